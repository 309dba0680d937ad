"""SQLite under concurrent writers: callers of one process take turns at the file's gate.

Write transactions begin with ``BEGIN IMMEDIATE``, so a transaction that reads a row and then
writes it waits its turn instead of failing with "database is locked" when it upgrades; reads
outside a transaction never take the write lock. Within one process the turns are taken at the
file's gate (`activerecord.dialects.sqlite_gate`): writers in arrival order, a commit after the
readers inside, a read inside a write transaction passing freely, a wait past the busy timeout
failing as "database is locked" (retryable), and neither a timeout nor a cancelled task leaving
a turn behind. The sync loads run in real threads, as sync callers do, never on the event
loop's thread; the async ones on one event loop and on two at once.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from activerecord import ActiveRecord, ConnectionManager, Field, IntegerField, PrimaryKeyField
from activerecord.dialects.sqlite_gate import Gate, gate_for
from activerecord.errors import Retry, retry_class

from .backends import BackendDatabases
from .dual import IO
from .models import Everything

pytestmark = pytest.mark.backends("sqlite")


def _increment(pk: int) -> None:
    with Everything.transaction():
        row = Everything.find().where(Everything.id == pk).for_update().one()
        row.small += 1
        row.save()


async def _aincrement(pk: int) -> None:
    async with Everything.atransaction():
        row = await Everything.find().where(Everything.id == pk).for_update().aone()
        row.small += 1
        await row.asave()


def _in_threads(threads: int, each: int, pk: int) -> list[BaseException]:
    errors: list[BaseException] = []
    start = threading.Barrier(threads)

    def work() -> None:
        start.wait()
        try:
            for _ in range(each):
                _increment(pk)
        except BaseException as exc:  # collected and asserted on below
            errors.append(exc)

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return errors


async def test_concurrent_read_then_write_transactions_queue_instead_of_failing(db: IO) -> None:
    counter = await db(Everything).create(small=0)
    if db.is_async:
        outcomes = await asyncio.gather(*(_aincrement(counter.id) for _ in range(50)), return_exceptions=True)
        errors = [o for o in outcomes if isinstance(o, BaseException)]
        expected = 50
    else:
        errors = await asyncio.to_thread(_in_threads, 10, 40, counter.id)
        expected = 400
    assert errors == []
    assert (await db(Everything.find_by_id(counter.id)).one()).small == expected


async def test_a_read_outside_a_transaction_does_not_wait_for_a_writer(db: IO) -> None:
    await db(Everything).create(small=1)
    holding = threading.Event()
    release = threading.Event()

    def writer() -> None:
        with Everything.transaction():
            Everything.create(small=2)
            holding.set()
            # Holds the write lock until the read below is done (or gives up after a while).
            release.wait(timeout=20)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        assert await asyncio.to_thread(holding.wait, 20)
        started = time.monotonic()
        if db.is_async:
            seen = await Everything.find().acount()
        else:
            seen = await asyncio.to_thread(Everything.find().count)
        waited = time.monotonic() - started
    finally:
        release.set()
        await asyncio.to_thread(thread.join)
    assert seen == 1  # the writer's row is not committed yet
    assert waited < 2  # far below the busy timeout: the read took no write lock
    assert await db(Everything.find()).count() == 2


def _gate(backend_dbs: BackendDatabases) -> Gate:
    gate = gate_for(backend_dbs.config("default")["database"])
    assert gate is not None
    return gate


def _until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.002)


class _Holder:
    """A write transaction held open on a thread of its own until `release`."""

    def __init__(self, model: type[Everything] = Everything) -> None:
        self.holding = threading.Event()
        self._release = threading.Event()
        self._thread = threading.Thread(target=self._hold, args=(model,))

    def _hold(self, model: type[Everything]) -> None:
        with model.transaction():
            model.create(small=-1)
            self.holding.set()
            self._release.wait(timeout=30)

    def __enter__(self) -> _Holder:
        self._thread.start()
        assert self.holding.wait(20)
        return self

    def release(self) -> None:
        self._release.set()
        self._thread.join(20)

    def __exit__(self, *exc: object) -> None:
        self.release()


async def _queued_writers(db: IO, gate: Gate, count: int) -> list[int]:
    """``count`` single creates queued one by one at the gate behind a held write transaction;
    the order in which their rows were written once it is released."""
    with _Holder():
        if db.is_async:
            tasks = []
            for i in range(count):
                tasks.append(asyncio.create_task(Everything.acreate(small=i)))
                while gate.waiting < i + 1:
                    await asyncio.sleep(0.002)
        else:
            threads = []
            for i in range(count):
                thread = threading.Thread(target=Everything.create, kwargs={"small": i})
                thread.start()
                threads.append(thread)
                await asyncio.to_thread(_until, lambda i=i: gate.waiting == i + 1)  # type: ignore[misc]
    if db.is_async:
        await asyncio.gather(*tasks)
    else:
        for thread in threads:
            await asyncio.to_thread(thread.join, 20)
    rows = await Everything.find().where(Everything.small >= 0).order_by(Everything.id).aall()
    return [row.small for row in rows]


async def test_writers_take_their_turns_in_arrival_order(db: IO, backend_dbs: BackendDatabases) -> None:
    gate = _gate(backend_dbs)
    assert await _queued_writers(db, gate, 6) == list(range(6))
    assert gate.idle


@pytest.mark.modes("async")
async def test_writers_on_two_event_loops_share_the_file_without_failing(db: IO, backend_dbs: BackendDatabases) -> None:
    counter = await db(Everything).create(small=0)

    def loop_of_writers() -> None:
        async def run() -> None:
            await asyncio.gather(*(_aincrement(counter.id) for _ in range(20)))
            await ConnectionManager.adispose()  # (this loop's connections go with it)

        asyncio.run(run())

    await asyncio.gather(*(asyncio.to_thread(loop_of_writers) for _ in range(2)))
    assert (await Everything.find_by_id(counter.id).aone()).small == 40
    assert _gate(backend_dbs).idle


async def test_a_commit_waits_for_the_readers_inside_then_goes(db: IO, backend_dbs: BackendDatabases) -> None:
    gate = _gate(backend_dbs)
    await Everything.abulk_insert([{"small": i} for i in range(3)])
    if db.is_async:
        stream = Everything.find().order_by(Everything.id).abatches(1).__aiter__()
        await stream.__anext__()  # a read transaction is open: the stream holds its snapshot
        writer = asyncio.create_task(Everything.acreate(small=9))
        while gate.waiting < 1:
            await asyncio.sleep(0.002)
        assert not writer.done()
        rest = [batch async for batch in stream]
        started = time.monotonic()
        await writer
    else:
        batches = Everything.find().order_by(Everything.id).batches(1)
        await db.blocking(next, batches)
        thread = threading.Thread(target=Everything.create, kwargs={"small": 9})
        thread.start()
        await asyncio.to_thread(_until, lambda: gate.waiting == 1)
        assert thread.is_alive()
        rest = await db.blocking(list, batches)
        started = time.monotonic()
        await asyncio.to_thread(thread.join, 20)
    assert len(rest) == 2  # the stream saw the file as it was when it began
    assert time.monotonic() - started < 1  # woken when the stream ended, not by a busy-handler poll
    assert await Everything.find().acount() == 4
    assert gate.idle


class Mirror(ActiveRecord):
    """``everything`` seen through a second connection name to the same file."""

    __tablename__ = "everything"
    __connection__ = "mirror"
    id: Field[int] = PrimaryKeyField(big=True)
    small: Field[int] = IntegerField(default=0)


@pytest.fixture
async def mirror(db: IO, backend_dbs: BackendDatabases) -> AsyncIterator[None]:
    ConnectionManager.configure({"mirror": backend_dbs.config("default")})
    yield
    await ConnectionManager.aremove("mirror")


async def test_a_read_inside_a_write_transaction_passes_on_another_connection(db: IO, mirror: None) -> None:
    await db(Everything).create(small=1)
    started = time.monotonic()
    async with db.transaction(Everything):
        await db(Everything).create(small=2)
        # Another connection to the same file, in the same caller: it must not wait for the
        # transaction it is inside of. SQLite lets it read the committed rows.
        seen = await db(Mirror.find()).count()
    assert seen == 1
    assert time.monotonic() - started < 2
    assert await db(Mirror.find()).count() == 2


@pytest.fixture
def short_busy_timeout(db: IO, backend_dbs: BackendDatabases) -> Iterator[str]:
    config: dict[str, Any] = {**backend_dbs.config("default"), "connect_args": {"timeout": 0.3}}
    ConnectionManager.configure({"impatient": config})
    yield "impatient"
    ConnectionManager.remove("impatient")


async def test_a_turn_not_given_within_the_busy_timeout_fails_as_locked_and_leaves_nothing_behind(
    db: IO, backend_dbs: BackendDatabases, short_busy_timeout: str
) -> None:
    gate = _gate(backend_dbs)
    with _Holder():
        started = time.monotonic()
        with pytest.raises(Exception) as caught:
            await db(Everything).create(small=5, using=short_busy_timeout)
        waited = time.monotonic() - started
    assert "database is locked" in str(caught.value)
    assert retry_class(caught.value) is Retry.RETRYABLE
    assert 0.25 < waited < 5
    assert await db(Everything).create(small=6, using=short_busy_timeout)  # the next call works
    assert sorted(r.small for r in await Everything.find().aall()) == [-1, 6]
    assert gate.idle


@pytest.mark.modes("async")
async def test_a_task_cancelled_at_the_gate_or_holding_it_leaves_no_turn_behind(
    db: IO, backend_dbs: BackendDatabases
) -> None:
    gate = _gate(backend_dbs)
    with _Holder():
        waiting = asyncio.create_task(Everything.acreate(small=1))
        while gate.waiting < 1:
            await asyncio.sleep(0.002)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        assert gate.waiting == 0
    inside = asyncio.Event()

    async def hold() -> None:
        async with Everything.atransaction():
            await Everything.acreate(small=2)
            inside.set()
            await asyncio.sleep(30)

    holder = asyncio.create_task(hold())
    await inside.wait()
    holder.cancel()
    with pytest.raises(asyncio.CancelledError):
        await holder
    started = time.monotonic()
    await Everything.acreate(small=3)  # the cancelled holder's turn was given back
    assert time.monotonic() - started < 1
    assert sorted(r.small for r in await Everything.find().aall()) == [-1, 3]
    await ConnectionManager.adispose()
    assert gate.idle


async def test_in_wal_mode_a_commit_does_not_wait_for_readers(db: IO, backend_dbs: BackendDatabases) -> None:
    path = backend_dbs.config("default")["database"]
    await ConnectionManager.adispose()  # new connections read the mode
    _journal_mode(path, "WAL")
    gate = _gate(backend_dbs)
    try:
        await Everything.abulk_insert([{"small": i} for i in range(3)])
        assert gate.wal
        if db.is_async:
            stream = Everything.find().order_by(Everything.id).abatches(1).__aiter__()
            await stream.__anext__()
            await asyncio.wait_for(Everything.acreate(small=9), 2)  # while the stream is open
            rest = [batch async for batch in stream]
        else:
            batches = Everything.find().order_by(Everything.id).batches(1)
            await db.blocking(next, batches)
            await asyncio.wait_for(db(Everything).create(small=9), 2)
            rest = await db.blocking(list, batches)
        assert len(rest) == 2
    finally:
        await ConnectionManager.adispose()
        _journal_mode(path, "DELETE")


def _journal_mode(path: str, mode: str) -> None:
    """Set the file's journal mode (a file's state, read by each new connection)."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        assert conn.execute(f"PRAGMA journal_mode={mode}").fetchone()[0].upper() == mode
    finally:
        conn.close()
