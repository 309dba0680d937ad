"""Transactions and savepoints, in both modes on every backend."""

from __future__ import annotations

import asyncio

import pytest

from activerecord import ActiveRecord
from activerecord.errors import SyncInAsyncError, TransactionError

from .dual import IO
from .models import Author, Order


class Boom(Exception):
    pass


async def _names(db: IO) -> list[str]:
    return [a.name for a in await db(Author.find().order_by(Author.name)).all()]


async def test_commit_and_rollback(db: IO) -> None:
    async with db.transaction():
        await db(Author).create(name="kept")
    with pytest.raises(Boom):
        async with db.transaction():
            await db(Author).create(name="lost")
            raise Boom
    assert await _names(db) == ["kept"]


async def test_reads_inside_a_transaction_see_its_writes(db: IO) -> None:
    async with db.transaction() as tx:
        assert tx.depth == 0
        await db(Author).create(name="a")
        assert await db(Author.find()).count() == 1


async def test_nested_rolls_back_only_its_own_level(db: IO) -> None:
    async with db.transaction():
        await db(Author).create(name="outer")
        with pytest.raises(Boom):
            async with db.transaction() as inner:
                assert inner.depth == 1
                await db(Author).create(name="inner")
                raise Boom
        async with db.transaction():
            await db(Author).create(name="inner-kept")
    assert await _names(db) == ["inner-kept", "outer"]


async def test_outer_failure_rolls_back_committed_savepoints(db: IO) -> None:
    with pytest.raises(Boom):
        async with db.transaction():
            async with db.transaction():
                await db(Author).create(name="inner")
            raise Boom
    assert await _names(db) == []


async def test_transaction_is_per_connection_name(db: IO) -> None:
    # A transaction on "default" does not cover the "orders" connection.
    with pytest.raises(Boom):
        async with db.transaction(ActiveRecord):
            await db(Author).create(name="a")
            await db(Order).create(user_id=1)
            raise Boom
    assert await db(Author.find()).count() == 0
    assert await db(Order.find()).count() == 1
    # A model's transaction() is on the model's own connection.
    with pytest.raises(Boom):
        async with db.transaction(Order):
            await db(Order).create(user_id=2)
            raise Boom
    assert await db(Order.find()).count() == 1


async def test_on_commit_runs_after_the_outermost_commit_only(db: IO) -> None:
    events: list[str] = []
    async with db.transaction() as outer:
        outer.on_commit(lambda: events.append("outer"))
        async with db.transaction() as inner:
            inner.on_commit(lambda: events.append("inner"))
        with pytest.raises(Boom):
            async with db.transaction() as failed:
                failed.on_commit(lambda: events.append("never"))
                failed.on_rollback(lambda: events.append("rolled back"))
                raise Boom
        assert events == ["rolled back"]
    assert events == ["rolled back", "outer", "inner"]


async def test_isolation_level(db: IO, backend: str) -> None:
    level = "SERIALIZABLE"
    async with db.transaction(isolation_level=level) as tx:
        await db(Author).create(name="a")
        if backend != "sqlite":
            conn = tx.connection
            actual = await conn.get_isolation_level() if db.is_async else conn.get_isolation_level()
            assert actual == level
    assert await db(Author.find()).count() == 1
    async with db.transaction():
        with pytest.raises(TransactionError, match="outermost"):
            async with db.transaction(isolation_level=level):
                pass


@pytest.mark.modes("async")
async def test_sync_calls_inside_an_async_transaction_are_refused(db: IO) -> None:
    async with Author.atransaction():
        # On the loop's thread a sync call would block the loop: refused first, naming the twin.
        with pytest.raises(SyncInAsyncError, match=r"await Author\.acreate\(\)"):
            Author.create(name="x")
        with pytest.raises(SyncInAsyncError, match="atransaction"), Author.transaction():
            pass
        # Off the loop (a thread started with this context), the pin is the async one's.
        with pytest.raises(TransactionError, match="a-prefixed"):
            await asyncio.to_thread(Author.create, name="x")
        with pytest.raises(TransactionError):
            await asyncio.to_thread(lambda: Author.transaction().__enter__())
    assert await Author.find().acount() == 0


@pytest.mark.modes("async")
@pytest.mark.backends("postgresql", "mysql")  # SQLite allows one writer at a time
async def test_concurrent_tasks_have_separate_transactions(db: IO) -> None:
    async def work(name: str, fail: bool) -> None:
        async with Author.atransaction():
            await Author.acreate(name=name)
            await asyncio.sleep(0.05)
            if fail:
                raise Boom

    results = await asyncio.gather(work("ok", False), work("bad", True), return_exceptions=True)
    assert isinstance(results[1], Boom)
    assert [a.name for a in await Author.find().aall()] == ["ok"]
