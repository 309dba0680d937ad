"""Metrics on every backend, sync and async: statement counts and durations, errors by class, rows,
pool gauges, replica skips and fallbacks; engines made before and after `instrument()`; nothing
left behind by `uninstrument()`."""

from __future__ import annotations

import gc
import threading
import weakref
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from sqlalchemy import Engine

from activerecord import ConnectionManager, ops
from activerecord.engine import engines as _engines
from activerecord.errors import retry_class
from activerecord.multidb import replicas as _replicas
from activerecord.ops.metrics import DURATION_BUCKETS, FOLD_AT, Histogram, Metrics

from .backends import BackendDatabases
from .dual import IO
from .models import Author, Order
from .test_replicas import Replicated
from .test_shards import SHARDS, ShardedUser, Shards, shards  # noqa: F401 (the shards fixture)


@pytest.fixture
def metrics() -> Iterator[Metrics]:
    yield ops.instrument()
    ops.uninstrument()


def selects(metrics: Metrics, connection: str, summary: str) -> float:
    return metrics.value(
        "db.client.operation.duration", {"activerecord.connection": connection, "db.query.summary": summary}
    )


async def test_each_statement_is_counted_with_its_labels(db: IO, backend: str, metrics: Metrics) -> None:
    for i in range(3):
        await db(Author).create(name=f"a{i}")
    assert len(await db(Author.find()).all()) == 3
    assert await db(Author.find()).count() == 3
    assert metrics.value("db.client.operation.duration", {"db.query.summary": "INSERT authors"}) == 3
    assert selects(metrics, "default", "SELECT authors") == 2
    family = next(f for f in metrics.collect() if f.name == "db.client.operation.duration")
    labels, series = next((dict(k), v) for k, v in family.series.items() if dict(k)["db.operation.name"] == "INSERT")
    assert isinstance(series, Histogram)
    assert labels["db.system.name"] == ConnectionManager.backend("default")
    assert labels["activerecord.role"] == "primary"
    assert labels["db.namespace"]
    assert series.sum > 0
    assert series.cumulative()[-1] == (float("inf"), 3)
    assert metrics.value("activerecord.db.rows", {"db.operation.name": "INSERT"}) == 3


async def test_errors_are_counted_by_class_and_retry_class(db: IO, metrics: Metrics) -> None:
    await db(Author).create(name="a", email="same@example.com")
    with pytest.raises(Exception) as caught:
        await db(Author).create(name="b", email="same@example.com")
    cls = type(caught.value).__qualname__
    retry = retry_class(caught.value).value
    assert metrics.value("activerecord.db.errors", {"error.type": cls, "activerecord.retry_class": retry}) == 1
    assert retry == "permanent"
    # The failed statement is timed too, and the next call on the connection works.
    assert metrics.value("db.client.operation.duration", {"db.query.summary": "INSERT authors"}) == 2
    assert await db(Author.find()).count() == 1


async def test_pool_gauges_show_a_connection_in_use(db: IO, metrics: Metrics) -> None:
    async with db.transaction():
        await db(Author).create(name="a")
        used = metrics.value("db.client.connection.count", {"activerecord.connection": "default", "state": "used"})
        assert used >= 1
    after = metrics.value("db.client.connection.count", {"activerecord.connection": "default", "state": "used"})
    assert after == used - 1
    assert metrics.value("db.client.connection.wait_time", {"activerecord.connection": "default"}) >= 1
    assert metrics.value("db.client.connection.pending_requests", {"activerecord.connection": "default"}) == 0


async def test_engines_made_before_and_after_instrument_are_both_covered(db: IO, backend_dbs: BackendDatabases) -> None:
    await db(Author.find()).count()  # the "default" engine of this mode exists before
    metrics = ops.instrument()
    try:
        ConnectionManager.configure({"late": backend_dbs.config("default")})
        await db(Author.find().using("late")).count()  # its engine is made now
        await db(Author.find()).count()
        # (A server backend's first connection also runs the dialect's own queries: not counted here.)
        assert selects(metrics, "late", "SELECT authors") == 1
        assert selects(metrics, "default", "SELECT authors") == 1
    finally:
        ops.uninstrument()
        ConnectionManager.remove("late")


def _listener_counts(engine: Engine) -> tuple[int, ...]:
    dialect: Any = engine.dialect
    dispatch: Any = engine.dispatch
    return (
        len(dialect.dispatch.do_execute),
        len(dialect.dispatch.do_executemany),
        len(dialect.dispatch.do_execute_no_params),
        len(dialect.dispatch.handle_error),
        len(dispatch.begin),
        len(dispatch.commit),
        len(dispatch.rollback),
        len(engine.pool.dispatch.connect),
        int("connect" in vars(engine.pool)),
        int(engine._has_events),
    )


async def test_uninstrument_leaves_every_engine_as_it_was(db: IO) -> None:
    await db(Author.find()).count()
    engines = [engine for _node, engine in _engines.existing_engines()]
    before = [_listener_counts(e) for e in engines]
    ops.instrument(meter_provider=MeterProvider(metric_readers=[InMemoryMetricReader()]))
    assert [_listener_counts(e) for e in engines] != before
    # Metrics alone leave SQLAlchemy's per-statement engine event path (and what it slows) off.
    assert [e._has_events for e in engines] == [bool(b[-1]) for b in before]
    assert _replicas.observer is not None
    ops.uninstrument()
    assert [_listener_counts(e) for e in engines] == before
    assert _replicas.observer is None
    assert ops.current_metrics() is None
    assert _engines._created == []


async def test_metrics_reach_an_opentelemetry_meter_provider(db: IO) -> None:
    reader = InMemoryMetricReader()
    ops.instrument(meter_provider=MeterProvider(metric_readers=[reader]))
    try:
        for i in range(4):
            await db(Author).create(name=f"a{i}")
        data = reader.get_metrics_data()
    finally:
        ops.uninstrument()
    assert data is not None
    found = {m.name: m for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics}
    points = [
        p
        for p in found["db.client.operation.duration"].data.data_points
        if p.attributes.get("db.query.summary") == "INSERT authors"
    ]
    assert [p.count for p in points] == [4]
    assert points[0].attributes["db.system.name"] == ConnectionManager.backend("default")
    assert list(points[0].explicit_bounds) == [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0]
    rows = found["activerecord.db.rows"].data.data_points
    assert [p.value for p in rows if p.attributes["db.operation.name"] == "INSERT"] == [4]
    assert "db.client.connection.count" in found


# -- replicas -------------------------------------------------------------------------------------


@pytest.fixture
async def rep(db: IO, backend_dbs: BackendDatabases) -> AsyncIterator[Replicated]:
    replicated = Replicated(backend_dbs)
    replicated.configure()
    yield replicated
    ConnectionManager.forget_write_positions()


async def test_read_your_own_writes_fallback_is_counted(db: IO, rep: Replicated, metrics: Metrics) -> None:
    await db(Order(user_id=42, total=10)).save()
    await db(Order.find().using_read_replica()).all()  # both replicas may lack the write
    assert metrics.value("activerecord.replica.fallbacks", {"reason": "read_your_writes"}) == 1
    assert metrics.value("activerecord.replica.skips", {"reason": "read_your_writes"}) == 2
    ConnectionManager.forget_write_positions()
    await db(Order.find().using_read_replica()).all()  # served by a replica
    assert metrics.value("activerecord.replica.fallbacks") == 1
    replica_reads = metrics.value(
        "db.client.operation.duration",
        {"activerecord.connection": "orders", "activerecord.role": "replica", "db.query.summary": "SELECT orders"},
    )
    assert replica_reads == 1


async def test_an_unreachable_replica_is_skipped_and_counted(db: IO, rep: Replicated, metrics: Metrics) -> None:
    rep.configure(reads=[rep.missing("orders_gone")])
    await db(Order.find().using_read_replica()).all()
    assert metrics.value("activerecord.replica.skips", {"reason": "unreachable"}) == 1
    assert metrics.value("activerecord.replica.fallbacks", {"reason": "unreachable"}) == 1


async def test_a_removed_connection_s_engines_are_not_kept_alive(db: IO, backend_dbs: BackendDatabases) -> None:
    ops.instrument()
    try:
        ConnectionManager.configure({"passing": backend_dbs.config("default")})
        await db(Author.find().using("passing")).count()
        engine = weakref.ref(ConnectionManager.engine("passing"))
        await ConnectionManager.aremove("passing")
        gc.collect()
        assert engine() is None
    finally:
        ops.uninstrument()


async def test_a_shard_s_statements_carry_its_group_and_shard(
    db: IO,
    shards: Shards,  # noqa: F811
    metrics: Metrics,
) -> None:
    shard = SHARDS[1]
    await db(ShardedUser.find().using(shard)).count()
    labels = {"activerecord.connection": "user_shards", "activerecord.shard": shard}
    assert metrics.value("db.client.operation.duration", {**labels, "db.query.summary": "SELECT users"}) == 1


def test_a_histogram_recorded_from_many_threads_while_read_loses_nothing() -> None:
    # Recording takes no lock (appends, folded into buckets in batches): nothing may be lost or
    # counted twice when threads record while another reads, and the buckets, count, sum and
    # rows agree with what was recorded.
    rows = [0.0]
    histogram = Histogram(DURATION_BUCKETS, rows)
    per_thread = 5 * FOLD_AT + 7
    values = (0.001, 0.0011, 0.02, 20.0)  # on a bound, just above one, between, above the last

    def record() -> None:
        for i in range(per_thread):
            histogram.observe(values[i % 4], 1 if i % 2 else -1)  # -1: the driver reported no count

    threads = [threading.Thread(target=record) for _ in range(4)]
    for thread in threads:
        thread.start()
    while any(thread.is_alive() for thread in threads):
        buckets, count, _ = histogram.snapshot()
        assert buckets[-1][1] == count
    for thread in threads:
        thread.join()
    total = 4 * per_thread
    assert histogram.count == total
    quarter = [sum(1 for i in range(per_thread) if i % 4 == k) * 4 for k in range(4)]
    cumulative = dict(histogram.cumulative())
    assert cumulative[0.001] == quarter[0]
    assert cumulative[0.005] == quarter[0] + quarter[1]
    assert cumulative[0.05] == quarter[0] + quarter[1] + quarter[2]
    assert cumulative[10.0] == total - quarter[3] and cumulative[float("inf")] == total
    assert histogram.sum == pytest.approx(sum(v * n for v, n in zip(values, quarter, strict=True)))
    assert rows[0] == 4 * (per_thread // 2)
