"""Async SQLite connections run their calls on a few threads per file, not one each.

What a user relies on: the threads do not grow with the pool under a service's load; a statement
that waits for another process's lock (or runs long) holds up the other connections' statements
for no more than `sqlite_threads.STALLED`, not for the whole wait; the threads end when the
file's connections close. Calls of one connection keep their order (every other SQLite test runs
on these threads too, on one event loop and on two at once).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import random
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from activerecord import ActiveRecord, ConnectionManager
from activerecord.dialects.sqlite_async import PROBE
from activerecord.dialects.sqlite_threads import STALLED, workers_for

from .backends import BackendDatabases
from .models import Everything

pytestmark = [pytest.mark.backends("sqlite"), pytest.mark.modes("async")]


def _threads_of(path: str) -> list[threading.Thread]:
    """The driver threads of the file at ``path`` (the suite's other files have their own)."""
    name = f"activerecord-sqlite {os.path.realpath(path)}"
    return [t for t in threading.enumerate() if t.name == name]


@pytest.fixture
async def pool_of_ten(backend_dbs: BackendDatabases) -> AsyncIterator[str]:
    # A file of its own: the suite's other connections to its default file keep their threads.
    config = {**backend_dbs.config("threads"), "pool_size": 10, "max_overflow": 0}
    ConnectionManager.configure({"ten": config})
    await ActiveRecord.acreate_all("ten", models=[Everything])
    yield "ten"
    await ActiveRecord.adrop_all("ten", models=[Everything])
    await ConnectionManager.aremove("ten")


async def test_under_load_ten_connections_share_a_few_threads_which_end_with_them(
    db: Any, backend_dbs: BackendDatabases, pool_of_ten: str
) -> None:
    path = backend_dbs.config("threads")["database"]
    rows = [await Everything.acreate(small=i, using=pool_of_ten) for i in range(20)]
    ops = random.Random(7).choices(["get", "update", "insert"], weights=[7, 2, 1], k=600)
    taken = iter(ops)
    most = 0

    async def worker() -> None:
        nonlocal most
        for op in taken:
            row = random.choice(rows)
            if op == "get":
                assert await Everything.find_by_id(row.id).using(pool_of_ten).aone()
            elif op == "update":
                await Everything.find_by_id(row.id).using(pool_of_ten).aupdate_all(small=1)
            else:
                await Everything.acreate(small=2, using=pool_of_ten)
            most = max(most, len(_threads_of(path)))

    await asyncio.gather(*(worker() for _ in range(50)))
    assert 1 <= most <= 4, most  # (one runs the calls, one watches it, at most)
    workers = weakref.ref(workers_for(os.path.realpath(path)))
    await ConnectionManager.adispose()
    deadline = time.monotonic() + 5
    while _threads_of(path) and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    assert _threads_of(path) == []
    gc.collect()
    assert workers() is None  # (nothing the file's statements left behind keeps them)
    assert await Everything.find().using(pool_of_ten).acount() == 20 + ops.count("insert")  # reopens


_HOLD_LOCK = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN " + sys.argv[3])  # IMMEDIATE: the write lock, as another process's writer holds it
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
conn.execute("COMMIT")
"""


@contextlib.contextmanager
def _lock_held(path: str, seconds: float, mode: str) -> Iterator[None]:
    """Another process holds the lock of ``BEGIN <mode>`` on ``path`` for ``seconds`` from entry;
    the exit waits for it to commit."""
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD_LOCK, path, str(seconds), mode], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        yield
    finally:
        holder.wait(timeout=10)


async def test_a_transaction_waiting_for_another_process_does_not_hold_up_the_reads(
    db: Any, backend_dbs: BackendDatabases, pool_of_ten: str
) -> None:
    row = await Everything.acreate(small=1, using=pool_of_ten)
    await asyncio.gather(*(Everything.find_by_id(row.id).using(pool_of_ten).aone() for _ in range(10)))  # (pool full)
    with _lock_held(backend_dbs.config("threads")["database"], 2.0, "IMMEDIATE"):
        started = time.monotonic()

        async def write() -> None:
            async with Everything.atransaction(pool_of_ten):  # BEGIN IMMEDIATE: waits for the lock
                await Everything.acreate(small=2, using=pool_of_ten)

        writer = asyncio.create_task(write())
        await asyncio.sleep(0.1)  # (the BEGIN waits in SQLite's busy handler, on a driver thread)
        for _ in range(20):
            assert (await Everything.find_by_id(row.id).using(pool_of_ten).aone()).small == 1
        reads_done = time.monotonic() - started
        assert not writer.done()
        # Held up for one STALLED at most, not until the other process lets go (2 s).
        assert reads_done < 0.1 + STALLED + 0.6, reads_done
        await writer  # gets the lock once the other process commits
    assert sorted(r.small for r in await Everything.find().using(pool_of_ten).aall()) == [1, 2]


async def test_a_read_slowed_once_by_a_lock_runs_without_yielding_again_on_a_busy_loop(
    db: Any, backend_dbs: BackendDatabases, pool_of_ten: str
) -> None:
    """A quick read is waited for in place (the event loop does not run other tasks meanwhile);
    one that had to wait for another process's exclusive lock is awaited for a while, and must
    come back once it is quick again, also while the loop is busy (an awaited run waits for the
    GIL the busy loop holds, and so would keep looking slow)."""
    row = await Everything.acreate(small=1, using=pool_of_ten)
    get = Everything.find_by_id(row.id).using(pool_of_ten)
    await get.aone()
    with _lock_held(backend_dbs.config("threads")["database"], 0.3, "EXCLUSIVE"):
        assert (await get.aone()).small == 1  # (waits in SQLite's busy handler until the commit)
    ticks = 0
    busy = True

    async def spin() -> None:  # a loop busy with other requests, the GIL held a few ms at a time
        nonlocal ticks
        while busy:
            ticks += 1
            sum(range(200_000))  # (one call in C: no switch to another thread until it returns)
            await asyncio.sleep(0)

    spinner = asyncio.create_task(spin())
    try:
        for _ in range(6 * PROBE):
            assert (await get.aone()).small == 1
        before = ticks
        for _ in range(40):
            await get.aone()
        yielded = ticks - before
    finally:
        busy = False
        await spinner
    assert yielded == 0, yielded
