"""Under pool contention a released connection goes to the caller that waited longest.

A pool of one connection, a holder, and callers queued behind it one by one: they get the
connection in the order they came, and a holder that releases and asks again queues behind them
(SQLAlchemy's own pool and asyncio's queue let it take the connection straight back). Threads in
sync mode, tasks in async mode, and tasks on two event loops at once; with ``pool_timeout``,
cancellation, ``pool_use_lifo``, overflow and dispose.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import sqlalchemy as sa

from activerecord import ConnectionManager
from activerecord.engine.greenlets import run_in_greenlet
from activerecord.engine.pools import FairAsyncQueuePool, FairQueuePool, fair_pools_usable

from .backends import BackendDatabases
from .dual import IO

NAME = "contended"
WAITERS = 5


@pytest.fixture
async def configure(db: IO, backend_dbs: BackendDatabases) -> AsyncIterator[Callable[..., None]]:
    def configure(**pool: Any) -> None:
        ConnectionManager.configure({NAME: {**backend_dbs.config("default"), **pool}})

    yield configure
    if ConnectionManager.is_configured(NAME):
        await ConnectionManager.aremove(NAME)


def _until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.005)


async def _auntil(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        await asyncio.sleep(0.005)


def _waiting(engine: sa.Engine) -> int:
    return len(engine.pool._pool._waiters)  # type: ignore[attr-defined]


def _sync_hand_off(engine: sa.Engine) -> list[str]:
    """The order in which WAITERS threads, queued one by one behind a holder, and then the
    holder itself (releasing and asking again at once) get the one connection."""
    order: list[str] = []
    holder = engine.connect()

    def wait_for_it(label: str) -> None:
        with engine.connect():
            order.append(label)

    threads = []
    for i in range(WAITERS):
        thread = threading.Thread(target=wait_for_it, args=(f"w{i}",))
        thread.start()
        threads.append(thread)
        _until(lambda i=i: _waiting(engine) == i + 1)  # type: ignore[misc]
    holder.close()
    with engine.connect():
        order.append("holder")
    for thread in threads:
        thread.join(10)
    return order


async def _async_hand_off(engine: Any) -> list[str]:
    order: list[str] = []
    holder = await engine.connect()

    async def wait_for_it(label: str) -> None:
        async with engine.connect():
            order.append(label)

    tasks = []
    for i in range(WAITERS):
        tasks.append(asyncio.create_task(wait_for_it(f"w{i}")))
        await _auntil(lambda i=i: _waiting(engine.sync_engine) == i + 1)  # type: ignore[misc]
    await holder.close()
    async with engine.connect():
        order.append("holder")
    await asyncio.gather(*tasks)
    return order


EXPECTED = [*(f"w{i}" for i in range(WAITERS)), "holder"]


async def test_waiters_get_a_released_connection_in_arrival_order(db: IO, configure: Callable[..., None]) -> None:
    configure(pool_size=1, max_overflow=0)
    if db.is_async:
        engine = ConnectionManager.async_engine(NAME)
        assert isinstance(engine.sync_engine.pool, FairAsyncQueuePool)
        assert await _async_hand_off(engine) == EXPECTED
    else:
        sync_engine = ConnectionManager.engine(NAME)
        assert isinstance(sync_engine.pool, FairQueuePool)
        assert await asyncio.to_thread(_sync_hand_off, sync_engine) == EXPECTED


@pytest.mark.modes("async")  # (event loops are the async mode's)
async def test_fair_hand_off_on_two_event_loops_at_once(db: IO, configure: Callable[..., None]) -> None:
    configure(pool_size=1, max_overflow=0)

    def on_a_loop_of_its_own() -> list[str]:
        async def main() -> list[str]:
            return await _async_hand_off(ConnectionManager.async_engine(NAME))

        return asyncio.run(main())

    here, there = await asyncio.gather(
        _async_hand_off(ConnectionManager.async_engine(NAME)), asyncio.to_thread(on_a_loop_of_its_own)
    )
    assert here == EXPECTED
    assert there == EXPECTED


async def test_a_waiter_that_times_out_leaves_the_queue(db: IO, configure: Callable[..., None]) -> None:
    configure(pool_size=1, max_overflow=0, pool_timeout=0.2)
    if db.is_async:
        engine = ConnectionManager.async_engine(NAME)
        holder = await engine.connect()
        with pytest.raises(sa.exc.TimeoutError):
            await engine.connect()
        assert _waiting(engine.sync_engine) == 0
        await holder.close()
        async with engine.connect() as conn:
            assert (await conn.execute(sa.text("SELECT 1"))).scalar() == 1
        return

    def scenario() -> None:
        engine = ConnectionManager.engine(NAME)
        holder = engine.connect()
        with pytest.raises(sa.exc.TimeoutError):
            engine.connect()
        assert _waiting(engine) == 0
        holder.close()
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT 1")).scalar() == 1

    await asyncio.to_thread(scenario)


@pytest.mark.modes("async")  # (cancelling a task is the async mode's)
async def test_a_cancelled_waiter_leaves_the_queue_and_the_next_one_is_served(
    db: IO, configure: Callable[..., None]
) -> None:
    configure(pool_size=1, max_overflow=0)
    engine = ConnectionManager.async_engine(NAME)
    holder = await engine.connect()
    served: list[str] = []

    async def wait_for_it(label: str) -> None:
        async with engine.connect():
            served.append(label)

    first = asyncio.create_task(wait_for_it("cancelled"))
    await _auntil(lambda: _waiting(engine.sync_engine) == 1)
    second = asyncio.create_task(wait_for_it("served"))
    await _auntil(lambda: _waiting(engine.sync_engine) == 2)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    assert _waiting(engine.sync_engine) == 1
    await holder.close()
    await asyncio.wait_for(second, 10)
    assert served == ["served"]
    assert engine.sync_engine.pool.checkedout() == 0  # type: ignore[attr-defined]


async def test_lifo_overflow_and_dispose_work_as_before(db: IO, configure: Callable[..., None]) -> None:
    configure(pool_size=2, max_overflow=1, pool_use_lifo=True, pool_timeout=5)

    def scenario(engine: sa.Engine) -> None:
        a, b, c = engine.connect(), engine.connect(), engine.connect()  # two pooled, one overflow
        drivers = [conn.connection.dbapi_connection for conn in (a, b, c)]
        for conn in (c, a, b):
            conn.close()  # c and a are kept; b finds the pool full and is closed
        assert engine.pool.checkedin() == 2  # type: ignore[attr-defined]
        with engine.connect() as again:  # LIFO: the connection kept last comes first
            assert again.connection.dbapi_connection is drivers[0]
        engine.dispose()
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT 1")).scalar() == 1

    if db.is_async:
        await run_in_greenlet(scenario, ConnectionManager.async_engine(NAME).sync_engine)
    else:
        await asyncio.to_thread(scenario, ConnectionManager.engine(NAME))


def test_the_pools_self_check_passes_on_this_sqlalchemy() -> None:
    assert fair_pools_usable()
