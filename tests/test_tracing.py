"""OpenTelemetry spans on every backend, sync and async: statement spans with the database semantic
conventions' attributes, write transactions as their parents, errors, statement text only when
asked (never values), and which replica served a read and why."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from activerecord import ConnectionManager, ops

from .backends import BackendDatabases
from .dual import IO
from .models import Author, Order
from .test_replicas import Replicated

SECRET = "bound-secret-6f1d"


class Spans:
    """An in-memory span exporter behind a tracer provider."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider()
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))

    def named(self, name: str) -> list[ReadableSpan]:
        return [s for s in self.exporter.get_finished_spans() if s.name == name]

    def clear(self) -> None:
        self.exporter.clear()


@pytest.fixture
def spans() -> Iterator[Spans]:
    found = Spans()
    ops.instrument(tracer_provider=found.provider)
    yield found
    ops.uninstrument()


async def test_a_statement_span_has_the_semantic_convention_attributes(db: IO, spans: Spans) -> None:
    await db(Author).create(name="a", email=SECRET)
    spans.clear()
    assert await db(Author.find()).count() == 1
    (span,) = spans.named("SELECT authors")
    attrs = dict(span.attributes or {})
    url = ConnectionManager.engine("default").url
    assert attrs["db.system.name"] == ConnectionManager.backend("default")
    assert attrs["db.namespace"] == url.database
    assert attrs["db.operation.name"] == "SELECT"
    assert attrs["db.query.summary"] == "SELECT authors"
    assert attrs["activerecord.connection"] == "default"
    assert attrs["activerecord.role"] == "primary"
    assert attrs["activerecord.node"] == ConnectionManager.node("default").node.safe_url
    if url.host:
        assert (attrs["server.address"], attrs["server.port"]) == (url.host, str(url.port))
    assert "db.query.text" not in attrs  # statement text only when asked for
    assert span.kind.name == "CLIENT"


async def test_statement_text_has_placeholders_never_values(db: IO) -> None:
    found = Spans()
    ops.instrument(tracer_provider=found.provider, statement_text=True)
    try:
        await db(Author).create(name=SECRET, email=SECRET)
        await db(Author.find().where(name=SECRET)).all()
    finally:
        ops.uninstrument()
    texts = [str((s.attributes or {}).get("db.query.text")) for s in found.exporter.get_finished_spans()]
    assert any("INSERT INTO authors" in t for t in texts)
    for span in found.exporter.get_finished_spans():
        assert SECRET not in repr(dict(span.attributes or {}))


async def test_write_transaction_span_is_the_parent_of_its_statements(db: IO, spans: Spans) -> None:
    tracer = spans.provider.get_tracer("test")
    with tracer.start_as_current_span("request") as request:
        async with db.transaction():
            await db(Author).create(name="a")
            await db(Author).create(name="b")
    (tx,) = spans.named("transaction")
    assert (tx.attributes or {})["activerecord.transaction.outcome"] == "commit"
    assert tx.parent is not None and tx.parent.span_id == request.get_span_context().span_id
    inserts = spans.named("INSERT authors")
    assert len(inserts) == 2
    assert {s.parent.span_id for s in inserts if s.parent} == {tx.context.span_id}


async def test_a_rolled_back_transaction_and_a_failed_statement(db: IO, spans: Spans) -> None:
    await db(Author).create(name="a", email="same@example.com")
    spans.clear()
    with pytest.raises(Exception):  # noqa: B017 (the driver's own IntegrityError class)
        async with db.transaction():
            await db(Author).create(name="b", email="same@example.com")
    (tx,) = spans.named("transaction")
    assert (tx.attributes or {})["activerecord.transaction.outcome"] == "rollback"
    (failed,) = spans.named("INSERT authors")
    assert failed.status.status_code is StatusCode.ERROR
    assert (failed.attributes or {})["error.type"]
    assert await db(Author.find()).count() == 1  # the next call works


async def test_reads_outside_a_transaction_make_no_transaction_span(db: IO, spans: Spans) -> None:
    await db(Author.find()).all()
    assert spans.named("transaction") == []
    assert len(spans.named("SELECT authors")) == 1


# -- replicas -------------------------------------------------------------------------------------


@pytest.fixture
async def rep(db: IO, backend_dbs: BackendDatabases) -> AsyncIterator[Replicated]:
    replicated = Replicated(backend_dbs)
    replicated.configure()
    yield replicated
    ConnectionManager.forget_write_positions()


def _choice(span: ReadableSpan) -> tuple[object, object, object]:
    attrs = dict(span.attributes or {})
    keys = ("activerecord.role", "activerecord.replica.choice", "activerecord.replica.reason")
    return attrs.get(keys[0]), attrs.get(keys[1]), attrs.get(keys[2])


async def test_spans_say_which_replica_served_a_read_and_why(db: IO, rep: Replicated, spans: Spans) -> None:
    await db(Order(user_id=42, total=10)).save()
    spans.clear()
    await db(Order.find().using_read_replica()).all()
    (fallback,) = spans.named("SELECT orders")
    assert _choice(fallback) == ("primary", "fallback", "read_your_writes")
    ConnectionManager.forget_write_positions()
    spans.clear()
    await db(Order.find().using_read_replica()).all()
    (served,) = spans.named("SELECT orders")
    assert _choice(served) == ("replica", "replica", "routing")
    replicas = {r.label for r in ConnectionManager.cluster("orders").replicas}
    assert (served.attributes or {})["activerecord.node"] in replicas
    spans.clear()
    await db(Order.find()).all()  # explicit routing: the primary, no replica decision
    (plain,) = spans.named("SELECT orders")
    assert _choice(plain) == ("primary", None, None)
