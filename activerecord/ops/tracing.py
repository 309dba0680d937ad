"""OpenTelemetry spans: one per statement, one per write transaction.

Attribute names follow OpenTelemetry's database semantic conventions (``db.system.name``,
``db.namespace``, ``db.operation.name``, ``db.query.summary``, ``server.address``,
``server.port``, ``error.type``); activerecord adds ``activerecord.connection``, ``.role``,
``.node``, ``.shard`` and, on the first statement of a read routed among replicas,
``activerecord.replica.choice`` (replica or fallback) and ``activerecord.replica.reason``.
Statement text (``db.query.text``, with placeholders, never values) only when asked for.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer
from sqlalchemy import Connection, Engine, event

from ..dialects.base import begins_write

Attributes = Mapping[str, Any]


class Tracing:
    """Makes the spans for the engines it is installed on."""

    def __init__(self, tracer: Tracer, statement_text: bool) -> None:
        self.tracer = tracer
        self.statement_text = statement_text
        # The open write transaction of each connection: its statements' spans are its children.
        self._transactions: weakref.WeakKeyDictionary[Connection, Span] = weakref.WeakKeyDictionary()

    def start_statement(
        self, name: str, attributes: Attributes, statement: str, conn: Connection | None, extra: Attributes | None
    ) -> Span:
        """Start the span of one statement (ended by `end_statement`)."""
        parent = self._transactions.get(conn) if conn is not None else None
        ctx = trace.set_span_in_context(parent) if parent is not None else None
        attrs = dict(attributes)
        if extra:
            attrs.update(extra)
        if self.statement_text:
            attrs["db.query.text"] = statement
        return self.tracer.start_span(name, context=ctx, kind=SpanKind.CLIENT, attributes=attrs)

    @staticmethod
    def end_statement(span: Span, error: BaseException | None, rows: int) -> None:
        """Finish a statement's span, marking it failed when ``error`` is set."""
        if error is not None:
            span.set_attribute("error.type", type(error).__qualname__)
            span.set_status(Status(StatusCode.ERROR, type(error).__qualname__))
        elif rows >= 0:
            span.set_attribute("db.response.returned_rows", rows)
        span.end()

    def install(self, engine: Engine, attributes: Callable[[], Attributes]) -> None:
        """Trace the write transactions of ``engine`` (begun with ``begin_write``), their spans
        carrying ``attributes()``."""

        def begin(conn: Connection) -> None:
            if begins_write():
                # The caller's span (if any) is the parent: transactions nest in request spans.
                parent = otel_context.get_current()
                self._transactions[conn] = self.tracer.start_span(
                    "transaction", context=parent, kind=SpanKind.CLIENT, attributes=attributes()
                )

        def commit(conn: Connection) -> None:
            self._finish(conn, "commit")

        def rollback(conn: Connection) -> None:
            self._finish(conn, "rollback")

        event.listen(engine, "begin", begin)
        event.listen(engine, "commit", commit)
        event.listen(engine, "rollback", rollback)
        engine_listeners = _ENGINE_LISTENERS.setdefault(engine, [])
        engine_listeners.extend(zip(("begin", "commit", "rollback"), (begin, commit, rollback), strict=True))

    def _finish(self, conn: Connection, outcome: str) -> None:
        span = self._transactions.pop(conn, None)
        if span is not None:
            span.set_attribute("activerecord.transaction.outcome", outcome)
            span.end()

    @staticmethod
    def uninstall(engine: Engine) -> None:
        """Remove the transaction listeners from ``engine``."""
        for name, fn in _ENGINE_LISTENERS.pop(engine, []):
            if event.contains(engine, name, fn):
                event.remove(engine, name, fn)


_ENGINE_LISTENERS: weakref.WeakKeyDictionary[Engine, list[tuple[str, Any]]] = weakref.WeakKeyDictionary()
