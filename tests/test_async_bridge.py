"""Async operations run their sync code in reused greenlets: what a caller sees is unchanged."""

from __future__ import annotations

import asyncio
import contextvars
import gc
import weakref

import pytest
import sqlalchemy as sa

from activerecord import ActiveRecord, ConnectionManager
from tests.dual import IO
from tests.models import Author

pytestmark = pytest.mark.modes("async")


@pytest.mark.backends("postgresql", "mysql")  # SQLite allows one writer at a time
async def test_many_tasks_at_once_each_get_their_own_results(db: IO) -> None:
    async def work(i: int) -> tuple[int, int]:
        async with Author.atransaction():
            made = await Author.acreate(name=f"t{i}", age=i)
            await asyncio.sleep(0)  # let the other tasks' operations interleave
            again = await Author.find_by_id(made.id).aone()
            return again.age or 0, await Author.find().where(Author.age == i).acount()

    results = await asyncio.gather(*(work(i) for i in range(40)))
    assert results == [(i, 1) for i in range(40)]
    assert await Author.find().acount() == 40


async def test_statement_events_run_in_the_callers_context(db: IO) -> None:
    # A tracer's SQLAlchemy listener (OpenTelemetry's, say) reads the current span from a
    # contextvar while the statement runs: it must see the context of the task that awaited.
    span: contextvars.ContextVar[str] = contextvars.ContextVar("span", default="none")
    seen: dict[str, str] = {}

    def before_execute(conn: sa.Connection, cursor: object, statement: str, *args: object) -> None:
        if "authors" in statement:
            seen[span.get()] = statement.split()[0]

    engine = ConnectionManager.async_engine("default").sync_engine
    sa.event.listen(engine, "before_cursor_execute", before_execute)
    try:

        async def task(i: int) -> None:
            span.set(f"span{i}")
            await asyncio.sleep(0)
            if i % 2:
                await Author.find().where(Author.age == i).acount()
            else:
                await Author.acreate(name=f"a{i}", age=i)

        await asyncio.gather(*(task(i) for i in range(6)))
    finally:
        sa.event.remove(engine, "before_cursor_execute", before_execute)
    assert seen == {f"span{i}": "SELECT" if i % 2 else "INSERT" for i in range(6)}


async def test_an_error_inside_an_operation_reaches_the_caller_and_the_next_one_runs(db: IO) -> None:
    await Author.acreate(name="ada", email="ada@example.com")
    for _ in range(3):
        with pytest.raises(sa.exc.IntegrityError):
            await Author.acreate(name="bob", email="ada@example.com")
    assert [a.name for a in await Author.find().aall()] == ["ada"]
    await Author.acreate(name="cy")
    assert await Author.find().acount() == 2


@pytest.mark.backends("postgresql", "mysql")  # a statement that waits on the server
async def test_a_cancelled_operation_raises_at_once_and_the_pool_keeps_serving(db: IO) -> None:
    pg = ConnectionManager.backend("default") == "postgresql"
    sleep = "SELECT pg_sleep(30)" if pg else "SELECT SLEEP(30)"
    for _ in range(2):
        task = asyncio.create_task(ActiveRecord.aexecute_raw(sleep))
        await asyncio.sleep(0.3)  # the statement is running on the server
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, 10)  # not the 30 s the statement would take
    await Author.acreate(name="after")
    assert [a.name for a in await Author.find().aall()] == ["after"]


async def test_an_idle_greenlet_keeps_no_result_or_error_alive(db: IO) -> None:
    await Author.acreate(name="ada", email="ada@example.com")
    records = await Author.find().aall()
    record = weakref.ref(records[0])
    del records
    with pytest.raises(sa.exc.IntegrityError) as failure:
        await Author.acreate(name="bob", email="ada@example.com")
    error = weakref.ref(failure.value)
    del failure
    gc.collect()
    assert record() is None and error() is None
