"""The event store on every backend, sync and async: concurrency, commit order, snapshots,
upcasting, subscriptions, publishing through the outbox."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from activerecord import ActiveRecord, BigIntegerField, StringField
from activerecord.errors import ConcurrencyError, ConfigurationError, Retry, ValidationError, retry_class
from activerecord.patterns import (
    NO_STREAM,
    EventRegistry,
    EventStore,
    NewEvent,
    Outbox,
    RecordedEvent,
    Subscription,
)

from .dual import IO

STORE = EventStore("default", prefix="test_es_")
OUTBOX = Outbox("default", table="test_es_outbox")
PUBLISHING = EventStore("default", prefix="test_es_", outbox=OUTBOX, topic_prefix="orders.")


class EsProjection(ActiveRecord):
    """What a subscription's handler writes: one row per event, unique by position."""

    __tablename__ = "test_es_projection"

    position: int = BigIntegerField(unique=True)
    stream_id: str = StringField(max_length=255)


def _events(*types: str) -> list[NewEvent]:
    return [NewEvent(t, {"t": t}) for t in types]


async def _run_concurrently(db: IO, calls: list[Callable[[], Any]]) -> list[Any]:
    """Run each call at once (threads in sync mode, tasks in async mode); their results or exceptions."""
    if db.is_async:
        return list(await asyncio.gather(*(call() for call in calls), return_exceptions=True))
    results: list[Any] = [None] * len(calls)
    barrier = threading.Barrier(len(calls))

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = calls[i]()
        except Exception as exc:
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def _append_call(db: IO, store: EventStore, stream: str, events: list[NewEvent], expected: int | None) -> Any:
    if db.is_async:
        return lambda: store.aappend(stream, events, expected_version=expected)
    return lambda: store.append(stream, events, expected_version=expected)


async def test_append_and_read_with_versions_and_positions(db: IO) -> None:
    first = await db(STORE).append("order-1", _events("Placed", "Paid"), expected_version=NO_STREAM)
    assert (first.version, first.first_position, first.last_position) == (2, 1, 2)
    await db(STORE).append("order-2", _events("Placed"))
    await db(STORE).append("order-1", _events("Shipped"), expected_version=2)
    stream = await db(STORE).read_stream("order-1")
    assert [(e.version, e.type, e.position) for e in stream] == [(1, "Placed", 1), (2, "Paid", 2), (3, "Shipped", 4)]
    assert stream[0].data == {"t": "Placed"} and stream[0].recorded_at.tzinfo is not None
    assert [e.version for e in await db(STORE).read_stream("order-1", from_version=2)] == [2, 3]
    everything = await db(STORE).read_all()
    assert [(e.position, e.stream_id) for e in everything] == [
        (1, "order-1"),
        (2, "order-1"),
        (3, "order-2"),
        (4, "order-1"),
    ]
    assert [e.position for e in await db(STORE).read_all(from_position=2, limit=2)] == [2, 3]
    assert await db(STORE).stream_version("order-1") == 3
    assert await db(STORE).stream_version("nothing") == 0
    assert await db(STORE).head() == 4


async def test_a_stale_expected_version_raises_and_writes_nothing(db: IO) -> None:
    await db(STORE).append("acct", _events("Opened"), expected_version=NO_STREAM)
    with pytest.raises(ConcurrencyError) as stale:
        await db(STORE).append("acct", _events("Deposited", "Deposited"), expected_version=0)
    assert (stale.value.expected, stale.value.actual) == (0, 1)
    assert retry_class(stale.value) is Retry.RETRYABLE
    with pytest.raises(ConcurrencyError) as missing:
        await db(STORE).append("no-such", _events("X"), expected_version=3)
    assert missing.value.actual is None
    # Inside a caller's transaction the other writes stay the caller's to commit.
    async with db.transaction():
        await db(EsProjection).create(position=99, stream_id="acct")
        with pytest.raises(ConcurrencyError):
            await db(STORE).append("acct", _events("Late"), expected_version=5)
    assert [e.type for e in await db(STORE).read_all()] == ["Opened"]
    assert await db(STORE).head() == 1
    assert await db(EsProjection.find()).count() == 1


async def test_bad_input_is_refused_before_any_sql(db: IO) -> None:
    for stream, events, expected in (
        ("", _events("A"), None),
        ("$all", _events("A"), None),
        ("s", [], None),
        ("s", [NewEvent("A", {"x": object()})], None),
        ("s", [NewEvent("")], None),
        ("s", _events("A"), -1),
        ("s", [NewEvent("A", metadata={"n": 1})], None),  # type: ignore[dict-item]
    ):
        with pytest.raises(ValidationError):
            await db(STORE).append(stream, events, expected_version=expected)
    with pytest.raises(ValidationError):
        await db(STORE).read_all(from_position=-1)
    assert await db(STORE).head() == 0


async def test_of_concurrent_appenders_exactly_one_wins_each_version(db: IO) -> None:
    appenders, rounds = 6, 4
    for version in range(rounds):
        calls = [_append_call(db, STORE, "hot", [NewEvent("Bid", {"by": n})], version) for n in range(appenders)]
        results = await _run_concurrently(db, calls)
        winners = [r for r in results if not isinstance(r, BaseException)]
        losers = [r for r in results if isinstance(r, BaseException)]
        assert len(winners) == 1, results
        assert winners[0].version == version + 1
        assert all(isinstance(r, ConcurrencyError) for r in losers), losers
    stream = await db(STORE).read_stream("hot")
    assert [e.version for e in stream] == list(range(1, rounds + 1))
    assert [e.position for e in await db(STORE).read_all()] == list(range(1, rounds + 1))


async def test_readers_polling_during_concurrent_commits_never_skip_an_event(db: IO) -> None:
    """Each reader asks for the events after the last position it saw, over and over, while
    writers commit; what every reader saw must be the final log, in order, with nothing skipped."""
    writers, appends_each, readers = 6, 12, 3
    streams = [f"burst-{n}" for n in range(writers)]
    for stream in streams:  # the streams and the position counter exist before the burst
        await db(STORE).append(stream, _events("Created"))
    seeded = await db(STORE).head()
    total = seeded + writers * sum(1 + n % 2 for n in range(appends_each))
    seen: list[list[int]] = [[] for _ in range(readers)]
    deadline = time.monotonic() + 120

    def record(reader: int, batch: list[RecordedEvent]) -> int:
        seen[reader].extend(e.position for e in batch)
        return len(seen[reader])

    if db.is_async:

        async def awrite(stream: str) -> None:
            for n in range(appends_each):
                await STORE.aappend(stream, [NewEvent("Tick", {"n": n}), NewEvent("Tock", {"n": n})][: 1 + n % 2])

        async def aread(reader: int) -> None:
            last = 0
            while last < total and time.monotonic() < deadline:
                batch = await STORE.aread_all(from_position=last + 1, limit=7)
                if batch:
                    last = batch[-1].position
                    record(reader, batch)
                await asyncio.sleep(0)

        await asyncio.gather(*(awrite(s) for s in streams), *(aread(r) for r in range(readers)))
    else:

        def write(stream: str) -> None:
            for n in range(appends_each):
                STORE.append(stream, [NewEvent("Tick", {"n": n}), NewEvent("Tock", {"n": n})][: 1 + n % 2])

        def read(reader: int) -> None:
            last = 0
            while last < total and time.monotonic() < deadline:
                batch = STORE.read_all(from_position=last + 1, limit=7)
                if batch:
                    last = batch[-1].position
                    record(reader, batch)

        threads = [threading.Thread(target=write, args=(s,)) for s in streams]
        threads += [threading.Thread(target=read, args=(r,)) for r in range(readers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    final = [e.position for e in await db(STORE).read_all(limit=10_000)]
    assert final == list(range(1, total + 1))  # every append committed; positions have no gaps
    for reader in seen:
        assert reader == final, "a reader skipped or reordered an event"
    for stream in streams:
        versions = [e.version for e in await db(STORE).read_stream(stream)]
        assert versions == list(range(1, len(versions) + 1))


async def test_snapshots_keep_the_latest(db: IO) -> None:
    await db(STORE).append("cart", _events("Added", "Added", "Removed"))
    assert await db(STORE).load_snapshot("cart") is None
    assert await db(STORE).save_snapshot("cart", 2, {"items": 2}) is True
    assert await db(STORE).save_snapshot("cart", 1, {"items": 1}) is False  # older than the kept one
    snapshot = await db(STORE).load_snapshot("cart")
    assert snapshot is not None and (snapshot.version, snapshot.state) == (2, {"items": 2})
    assert await db(STORE).save_snapshot("cart", 3, {"items": 1}) is True
    snapshot = await db(STORE).load_snapshot("cart")
    assert snapshot is not None and snapshot.version == 3
    rest = await db(STORE).read_stream("cart", from_version=snapshot.version + 1)
    assert rest == []
    with pytest.raises(ValidationError):
        await db(STORE).save_snapshot("cart", 0, {})


async def test_old_payloads_are_upcast_on_read(db: IO) -> None:
    await db(STORE).append("o", [NewEvent("OrderPlaced", {"amount": 5})])  # written at version 1
    registry = EventRegistry()
    registry.register("OrderPlaced", version=3)

    @registry.upcaster("OrderPlaced", from_version=1)
    def to_cents(data: dict[str, Any]) -> dict[str, Any]:
        return {"cents": data["amount"] * 100}

    @registry.upcaster("OrderPlaced", from_version=2)
    def add_currency(data: dict[str, Any]) -> dict[str, Any]:
        return {**data, "currency": "EUR"}

    store = EventStore("default", prefix="test_es_", registry=registry)
    await db(store).append("o", [NewEvent("OrderPlaced", {"cents": 700, "currency": "USD"})])
    events = await db(store).read_stream("o")
    assert [(e.data, e.schema_version) for e in events] == [
        ({"cents": 500, "currency": "EUR"}, 3),
        ({"cents": 700, "currency": "USD"}, 3),  # stored at 3: not upcast again
    ]
    # Without the upcasters the old store reads rows as stored.
    assert (await db(STORE).read_stream("o"))[0].data == {"amount": 5}
    broken = EventRegistry()
    broken.register("OrderPlaced", version=2)
    with pytest.raises(ConfigurationError):
        await db(EventStore("default", prefix="test_es_", registry=broken)).read_stream("o")


def _projecting(db: IO, fail_on: int | None = None) -> Any:
    def project(event: RecordedEvent) -> None:
        if event.position == fail_on:
            raise RuntimeError("handler fails")
        EsProjection.create(position=event.position, stream_id=event.stream_id)

    async def aproject(event: RecordedEvent) -> None:
        if event.position == fail_on:
            raise RuntimeError("handler fails")
        await EsProjection.acreate(position=event.position, stream_id=event.stream_id)

    return aproject if db.is_async else project


async def _projected(db: IO) -> list[int]:
    return sorted(r.position for r in await db(EsProjection.find()).all())


async def test_subscription_catches_up_exactly_once_and_rolls_back_a_failed_batch(db: IO) -> None:
    for n in range(5):
        await db(STORE).append(f"s{n % 2}", _events("E"))
    sub = Subscription(STORE, "projection", _projecting(db), batch_size=3)
    assert await db(sub).run_once() == 3
    assert await db(sub).run_once() == 2
    assert await db(sub).run_once() == 0
    assert await _projected(db) == [1, 2, 3, 4, 5]
    assert await db(sub).position() == 5
    # A failing handler rolls back its batch: its writes and the checkpoint.
    await db(STORE).append("s0", _events("E", "E"))
    failing = Subscription(STORE, "projection", _projecting(db, fail_on=7), batch_size=10)
    with pytest.raises(RuntimeError):
        await db(failing).run_once()
    assert await _projected(db) == [1, 2, 3, 4, 5]
    assert await db(sub).position() == 5
    # Two runners of one subscription at once: each event is handled once.
    await db(STORE).append("s1", _events(*["E"] * 10))
    results = await _run_concurrently(db, [sub.arun_once if db.is_async else sub.run_once] * 2)
    assert all(isinstance(r, int) for r in results), results
    assert await _projected(db) == list(range(1, 18))[: 5 + sum(results)]
    while await db(sub).run_once():
        pass
    assert await _projected(db) == list(range(1, 18))
    # A sync round refuses a coroutine handler instead of dropping its work.
    if not db.is_async:
        with pytest.raises(ConfigurationError):
            await db.blocking(Subscription(STORE, "wrong", _projecting(IO("async"))).run_once)
    # Another subscription name has its own checkpoint.
    other: list[int] = []
    assert await db(Subscription(STORE, "other", lambda e: other.append(e.position))).run_once() == 17


async def test_subscription_follows_live_appends(db: IO, backend: str) -> None:
    # On PostgreSQL a notification must wake the subscriber long before its poll interval.
    poll = 3.0 if backend == "postgresql" else 0.05
    await db(STORE).append("live", _events("Before"))
    sub = Subscription(STORE, "live", _projecting(db), poll_interval=poll)

    async def wait_for(count: int) -> float:
        started = time.monotonic()
        while len(await _projected(db)) < count:
            assert time.monotonic() - started < 20, "the subscription never caught up"
            await asyncio.sleep(0.02)
        return time.monotonic() - started

    if db.is_async:
        astop = asyncio.Event()
        task = asyncio.create_task(sub.arun_forever(astop))
        try:
            await wait_for(1)
            await asyncio.sleep(0.3)  # now it waits for the next append
            await STORE.aappend("live", _events("After"))
            latency = await wait_for(2)
        finally:
            astop.set()
            await asyncio.wait_for(task, poll + 10)
    else:
        stop = threading.Event()
        thread = threading.Thread(target=sub.run_forever, args=(stop,))
        thread.start()
        try:
            await wait_for(1)
            await asyncio.sleep(0.3)
            await db(STORE).append("live", _events("After"))
            latency = await wait_for(2)
        finally:
            stop.set()
            thread.join(poll + 10)
        assert not thread.is_alive()
    assert latency < poll * 0.8 or backend != "postgresql", latency
    assert await _projected(db) == [1, 2]
    assert await db(sub).position() == 2


async def test_events_published_through_the_outbox_in_the_append_transaction(db: IO) -> None:
    await db(PUBLISHING).append("order-9", _events("Placed", "Paid"))
    with pytest.raises(RuntimeError):
        async with db.transaction():
            await db(PUBLISHING).append("order-9", _events("Cancelled"))
            raise RuntimeError("the caller's transaction fails")
    rows = await db(OUTBOX.model.find().order_by("id")).all()
    assert [(r.topic, r.key, r.payload["version"], r.payload["type"]) for r in rows] == [
        ("orders.Placed", "order-9", 1, "Placed"),
        ("orders.Paid", "order-9", 2, "Paid"),
    ]
    assert rows[0].payload["id"] == (await db(STORE).read_stream("order-9"))[0].id
    with pytest.raises(ConfigurationError):
        EventStore("users", outbox=OUTBOX)


def test_tables_are_models_in_the_connections_metadata() -> None:
    from activerecord import metadata_for

    tables = metadata_for("default").tables
    assert {"test_es_events", "test_es_streams", "test_es_snapshots", "test_es_checkpoints"} <= set(tables)
    assert EventStore("default", prefix="test_es_").models == STORE.models
