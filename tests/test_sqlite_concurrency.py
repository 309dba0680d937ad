"""SQLite under concurrent writers: read-then-write transactions queue for the write lock.

Write transactions begin with ``BEGIN IMMEDIATE`` and wait on the busy timeout, so a transaction
that reads a row and then writes it waits its turn instead of failing with "database is locked"
when it upgrades; reads outside a transaction never take the write lock. The sync loads run in
real threads, as sync callers do, never on the event loop's thread.
"""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

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
