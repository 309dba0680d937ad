"""A cancelled async statement stops on the server: its session holds no locks afterwards.

asyncpg sends PostgreSQL a cancel request when the awaiting task is cancelled; on MariaDB
activerecord kills the statement's session from a side connection. Either way the statement is
gone from the server's process list at once, its transaction is rolled back, and the next call
on the same task works.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import uuid

import pytest
import sqlalchemy as sa

from activerecord import ActiveRecord, ConnectionManager
from activerecord.engine.cancel import KILL_TIMEOUT
from tests.backends import BackendDatabases
from tests.dual import IO
from tests.models import Author

pytestmark = [pytest.mark.modes("async"), pytest.mark.backends("postgresql", "mysql")]

# What the server shows for sessions whose current (or last) statement carries a tag.
_SESSIONS = {
    "postgresql": "SELECT count(*) FROM pg_stat_activity WHERE query LIKE :tag AND pid <> pg_backend_pid()",
    "mysql": "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE :tag AND ID <> CONNECTION_ID()",
}
# Fail at once instead of waiting for a lock.
_NO_WAIT = {"postgresql": "SET lock_timeout = '500ms'", "mysql": "SET SESSION innodb_lock_wait_timeout = 1"}


def _sleep(seconds: float, tag: str) -> str:
    function = "pg_sleep" if ConnectionManager.backend() == "postgresql" else "SLEEP"
    return f"SELECT {function}({seconds}) /* {tag} */"


def _sessions(tag: str) -> int:
    """The sessions running (or last having run) a statement tagged ``tag``, seen from outside."""
    with ConnectionManager.engine().connect() as conn:
        return int(conn.execute(sa.text(_SESSIONS[ConnectionManager.backend()]), {"tag": f"%{tag}%"}).scalar_one())


async def _until_gone(tag: str, within: float) -> float:
    """Seconds until no session runs ``tag`` (fails after ``within``)."""
    start = time.monotonic()
    while await asyncio.to_thread(_sessions, tag):
        assert time.monotonic() - start < within, f"a session still runs {tag!r} after {within}s"
        await asyncio.sleep(0.05)
    return time.monotonic() - start


async def _until_running(tag: str) -> None:
    deadline = time.monotonic() + 5
    while not await asyncio.to_thread(_sessions, tag):
        assert time.monotonic() < deadline, "the statement never reached the server"
        await asyncio.sleep(0.02)


def _update_without_waiting(author_id: int, name: str) -> None:
    """Update the row from another connection, failing if any lock is still held on it."""
    with ConnectionManager.engine().connect() as conn:
        conn.execute(sa.text(_NO_WAIT[ConnectionManager.backend()]))
        conn.execute(sa.text("UPDATE authors SET name = :n WHERE id = :i"), {"n": name, "i": author_id})
        conn.commit()


async def test_a_cancelled_statement_is_gone_from_the_server_and_the_task_goes_on(db: IO) -> None:
    tag = f"ar-cancel-{uuid.uuid4().hex}"
    task = asyncio.create_task(ActiveRecord.aexecute_raw(_sleep(5, tag)))
    await _until_running(tag)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 2)
    assert await _until_gone(tag, within=1.0) < 1.0

    # The same in this task, cancelled by a timeout: the next call on it works.
    tag = f"ar-cancel-{uuid.uuid4().hex}"
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.3):
            await ActiveRecord.aexecute_raw(_sleep(5, tag))
    assert await _until_gone(tag, within=1.0) < 1.0
    assert (await ActiveRecord.aexecute_raw("SELECT 1")).scalar() == 1


@pytest.mark.backends("mysql")
async def test_a_cancellation_the_driver_drops_at_connect_still_cancels_the_task(
    db: IO, monkeypatch: pytest.MonkeyPatch
) -> None:
    # asyncmy bounds its TCP connect with asyncio.wait_for, which on Python 3.11 returns the new
    # connection in place of a cancellation that arrives as the connect completes. That timing
    # cannot be arranged against a real server: the driver's connect is wrapped to drop one.
    asyncmy = pytest.importorskip("asyncmy")
    real_connect = asyncmy.connect

    async def connect_dropping_a_cancellation(*args: object, **kwargs: object) -> object:
        connection = await real_connect(*args, **kwargs)
        task = asyncio.current_task()
        assert task is not None
        task.cancel()  # arrives as the connect completes...
        with contextlib.suppress(asyncio.CancelledError):  # ...and is dropped, as wait_for drops it
            await asyncio.sleep(0)
        return connection

    await ConnectionManager.async_engine().dispose()  # the next statement connects anew
    monkeypatch.setattr(asyncmy, "connect", connect_dropping_a_cancellation)
    tag = f"ar-cancel-{uuid.uuid4().hex}"
    task = asyncio.create_task(ActiveRecord.aexecute_raw(_sleep(5, tag)))
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 2)  # not after the statement's 5 s: it is never sent
    assert not await asyncio.to_thread(_sessions, tag)
    monkeypatch.undo()
    assert (await ActiveRecord.aexecute_raw("SELECT 1")).scalar() == 1


@pytest.mark.backends("mysql")
async def test_a_kill_that_finds_the_session_ended_already_is_not_reported_as_a_failure(
    db: IO, backend_dbs: BackendDatabases, caplog: pytest.LogCaptureFixture
) -> None:
    import pymysql

    tag = f"ar-cancel-{uuid.uuid4().hex}"
    task = asyncio.create_task(ActiveRecord.aexecute_raw(_sleep(10, tag)))
    await _until_running(tag)
    # The session is ended from outside while this event loop is held (blocking calls, no await
    # until the task is cancelled), so the driver has not yet seen its connection close: the
    # cancellation's own kill then finds no such session.
    cfg = backend_dbs.config("default")
    admin = pymysql.connect(host=cfg["host"], port=cfg["port"], user=cfg["user"], password=cfg.get("password", ""))
    try:
        with admin.cursor() as cursor:
            cursor.execute(
                "SELECT ID FROM information_schema.PROCESSLIST WHERE INFO LIKE %s AND ID <> CONNECTION_ID()",
                (f"%{tag}%",),
            )
            (thread,) = cursor.fetchone()
            cursor.execute(f"KILL CONNECTION {int(thread)}")
            deadline = time.monotonic() + 5
            while cursor.execute("SELECT ID FROM information_schema.PROCESSLIST WHERE ID = %s", (thread,)):
                assert time.monotonic() < deadline, "the killed session never ended"
                time.sleep(0.01)
    finally:
        admin.close()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, KILL_TIMEOUT + 1)
    assert [r.getMessage() for r in caplog.records if r.name == "activerecord.cancel"] == []
    assert (await ActiveRecord.aexecute_raw("SELECT 1")).scalar() == 1


def _suppress_the_drivers_cancel_request(driver: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``driver``'s cancel request go unheard, as PostgreSQL ignores one arriving early."""
    if driver == "asyncpg":
        from asyncpg import connect_utils

        async def unheard(**kwargs: object) -> None:
            return None

        monkeypatch.setattr(connect_utils, "_cancel", unheard)
    else:
        import psycopg

        async def unheard_request(self: object, *, timeout: float = 5.0) -> None:
            return None

        monkeypatch.setattr(psycopg.AsyncConnection, "_try_cancel", unheard_request)


@pytest.mark.backends("postgresql")
@pytest.mark.direct  # through pgbouncer the session cannot be told apart: the driver's request is all
@pytest.mark.parametrize("driver", ["asyncpg", "psycopg_async"])
async def test_a_cancel_request_postgresql_ignores_still_ends_the_statement(
    db: IO, backend_dbs: BackendDatabases, monkeypatch: pytest.MonkeyPatch, driver: str
) -> None:
    # PostgreSQL ignores a cancel request that reaches the session before it has read the
    # statement; the statement then runs to its end. That moment cannot be arranged against a
    # real server: here the driver's cancel request goes unheard.
    cfg = backend_dbs.config("default")
    url = sa.URL.create(f"postgresql+{driver}", cfg.get("user"), cfg.get("password"), cfg["host"], cfg["port"])
    ConnectionManager.configure({"cancelled": {"url": url.set(database=cfg["database"]).render_as_string(False)}})
    try:
        author = await Author.acreate(name="before")
        _suppress_the_drivers_cancel_request(driver, monkeypatch)
        tag = f"ar-cancel-{uuid.uuid4().hex}"

        async def work() -> None:
            async with ActiveRecord.atransaction("cancelled"):
                await ActiveRecord.aexecute_raw(
                    "UPDATE authors SET name = 'inside' WHERE id = :id", {"id": author.id}, using="cancelled"
                )  # the row is locked from here on
                await ActiveRecord.aexecute_raw(_sleep(10, tag), using="cancelled")

        task = asyncio.create_task(work())
        await _until_running(tag)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            # (psycopg first waits 5 s for its own request to take effect; asyncpg does not wait)
            await asyncio.wait_for(task, KILL_TIMEOUT + (6 if driver == "psycopg_async" else 1))
        assert await _until_gone(tag, within=1.0) < 1.0
        started = time.monotonic()
        await asyncio.to_thread(_update_without_waiting, author.id, "elsewhere")
        assert time.monotonic() - started < 0.5
        monkeypatch.undo()
        assert (await ActiveRecord.aexecute_raw("SELECT 1", using="cancelled")).scalar() == 1
        await author.areload()
        assert author.name == "elsewhere"
    finally:
        await ConnectionManager.aremove("cancelled")


async def test_a_cancelled_transaction_is_rolled_back_and_its_locks_released(db: IO) -> None:
    author = await Author.acreate(name="before")
    tag = f"ar-cancel-{uuid.uuid4().hex}"
    rolled_back: list[bool] = []
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.5):
            async with Author.atransaction() as tx:
                tx.on_rollback(lambda: rolled_back.append(True))
                await author.aupdate(name="inside")  # the row is locked from here on
                await ActiveRecord.aexecute_raw(_sleep(5, tag))
    assert await _until_gone(tag, within=1.0) < 1.0
    assert rolled_back == [True]
    # Another connection updates the row at once: no lock is left behind.
    started = time.monotonic()
    await asyncio.to_thread(_update_without_waiting, author.id, "elsewhere")
    assert time.monotonic() - started < 0.5
    # The cancelled transaction's update was rolled back; this task goes on working.
    assert [a.name for a in await Author.find().aall()] == ["elsewhere"]
    async with Author.atransaction():
        await author.areload()
        await author.aupdate(name="after")
    assert [a.name for a in await Author.find().aall()] == ["after"]


async def test_many_cancelled_transactions_leave_no_session_behind(db: IO) -> None:
    authors = [await Author.acreate(name=f"a{i}") for i in range(5)]
    tag = f"ar-cancel-{uuid.uuid4().hex}"
    rng = random.Random(13)

    async def work(author: Author) -> None:
        async with Author.atransaction():
            await Author.find().where(Author.id == author.id).aupdate_all(age=1)
            await ActiveRecord.aexecute_raw(_sleep(10, tag))

    started = time.monotonic()
    for round_ in range(50):
        task = asyncio.create_task(work(authors[round_ % len(authors)]))
        # Cancelled at any point: before the statement is sent, while it runs, or while it starts.
        await asyncio.sleep(rng.uniform(0, 0.05))
        task.cancel()
        # The task ends once the side connection has killed its statement, which it waits for
        # up to KILL_TIMEOUT seconds: well before the statement's own 10 s. (A round takes ~10 ms;
        # the bound leaves room for a loaded machine, where one round took over 3.5 s.)
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, KILL_TIMEOUT + 5)
    assert time.monotonic() - started < 40  # rounds end at once, not after their 10 s sleep
    assert await _until_gone(tag, within=1.0) < 1.0
    for author in authors:
        await asyncio.to_thread(_update_without_waiting, author.id, "free")
    assert await Author.find().where(Author.age == 1).acount() == 0
    assert await Author.find().where(Author.name == "free").acount() == len(authors)
