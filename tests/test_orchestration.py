"""Orchestration written once: the async twins, the event-loop guard, the bridge's fallback, and
transactions whose COMMIT fails."""

from __future__ import annotations

import inspect
import threading
from collections.abc import AsyncIterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

import activerecord
from activerecord import (
    ActiveRecord,
    AllShardsQuery,
    Collection,
    ConnectionManager,
    IntegerField,
    PrimaryKeyField,
    Query,
    Transaction,
    migrations,
)
from activerecord.connections import execute as _execute
from activerecord.connections import transaction as _transaction
from activerecord.connections.manager import ConnectionManager as ConnectionManagerClass
from activerecord.engine import greenlets
from activerecord.errors import SyncInAsyncError

from .backends import BackendDatabases
from .dual import IO
from .models import Order
from .test_hooks import AsyncHooked

# -- every aX has the signature of its X ----------------------------------------------------------

# Async-only names: no sync form to compare with.
_ASYNC_ONLY = {"asweep"}


def _twins(owner: Any) -> list[tuple[str, Any, Any]]:
    found = []
    for name in dir(owner):
        if not name.startswith("a") or name.startswith("_") or name in _ASYNC_ONLY:
            continue
        twin = getattr(owner, name)
        sync = getattr(owner, name[1:], None)
        if callable(twin) and callable(sync) and not isinstance(twin, type):
            found.append((name, twin, sync))
    return found


def _shape(fn: Any) -> list[tuple[str, Any, Any]]:
    return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]


@pytest.mark.parametrize(
    "owner",
    [
        ActiveRecord,
        Order,
        Query,
        AllShardsQuery,
        Collection,
        ConnectionManagerClass,
        Transaction,
        migrations,
        _transaction,
        _execute,
    ],
    ids=lambda o: getattr(o, "__name__", repr(o)),
)
def test_every_async_twin_has_the_signature_of_its_sync_form(owner: Any) -> None:
    twins = _twins(owner)
    if owner in (ActiveRecord, Query, migrations):
        assert len(twins) >= 4  # (the test looks where the twins are)
    for name, twin, sync in twins:
        assert _shape(twin) == _shape(sync), f"{name} and {name[1:]} differ"


# -- sync I/O on a running loop -------------------------------------------------------------------


@pytest.mark.modes("async")
async def test_the_guides_await_order_save_fails_before_writing(db: IO) -> None:
    order = Order(user_id=1)
    with pytest.raises(SyncInAsyncError, match=r"Order\.save\(\) would block .*`await order\.asave\(\)`"):
        await order.save()  # type: ignore[misc]  # the guide's literal style
    with pytest.raises(SyncInAsyncError, match=r"await Order\.acreate\(\)"):
        Order.create(user_id=2)
    with pytest.raises(SyncInAsyncError, match=r"`await query\.acount\(\)`"):
        Order.find().count()
    with pytest.raises(SyncInAsyncError, match=r"async with Model\.atransaction\(\)"), Order.transaction():
        pass
    with pytest.raises(SyncInAsyncError, match=r"await aupgrade\(\)"):
        migrations.upgrade("orders", directory="/nonexistent")
    assert await Order.find().acount() == 0
    assert isinstance(SyncInAsyncError("x"), activerecord.ActiveRecordError)


@pytest.mark.modes("async")
async def test_notebooks_opt_out(db: IO, monkeypatch: pytest.MonkeyPatch) -> None:
    with activerecord.allow_sync_in_event_loop():
        Order.create(user_id=1)
        with Order.transaction():
            Order.create(user_id=2)
    monkeypatch.setenv("ACTIVERECORD_ALLOW_SYNC_IN_LOOP", "1")
    assert Order.find().count() == 2
    monkeypatch.setenv("ACTIVERECORD_ALLOW_SYNC_IN_LOOP", "0")
    with pytest.raises(SyncInAsyncError):
        Order.find().count()


async def test_sync_callers_off_the_loop_are_not_refused(db: IO) -> None:
    # The sync mode of this suite calls from a worker thread, as a sync service does.
    order = await db(Order).create(user_id=1)
    async with db.transaction(Order) as tx:
        await db(order).update(status="paid")
        assert await db(Order.find().where(status="paid")).count() == 1
        if not db.is_async:  # begun, used and ended on one thread, which is not the loop's
            assert _transaction.current("orders") is tx
            assert await db.blocking(threading.get_ident) != threading.get_ident()
    assert _transaction.current("orders") is None
    assert (await db(Order.find()).one()).status == "paid"


# -- the bridge falls back to SQLAlchemy's public path --------------------------------------------


@pytest.mark.modes("async")
async def test_the_bridge_falls_back_to_greenlet_spawn(db: IO, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(greenlets, "_self_check", lambda: False)
    with pytest.warns(RuntimeWarning, match="greenlet_spawn"):
        fallback = greenlets._choose()
    assert fallback is greenlets._spawned
    monkeypatch.setattr(greenlets, "_run", fallback)
    order = await Order.acreate(user_id=7)
    async with Order.atransaction():
        await order.aupdate(status="paid")
    assert (await Order.find_by_id(order.id).aone()).status == "paid"


def test_the_self_check_passes_on_the_pinned_sqlalchemy() -> None:
    assert greenlets._self_check()
    assert greenlets._run is greenlets._reused


# -- a failed COMMIT does not poison the thread or task ------------------------------------------


class Deferred(ActiveRecord):
    __tablename__ = "deferred_items"
    __connection__ = "deferred"

    id: int = PrimaryKeyField()
    k: int | None = IntegerField(nullable=True)


_DDL = {
    # A unique key checked at COMMIT.
    "postgresql": [
        "CREATE TABLE deferred_items (id SERIAL PRIMARY KEY, k INTEGER,"
        " CONSTRAINT deferred_k UNIQUE (k) DEFERRABLE INITIALLY DEFERRED)"
    ],
    # A foreign key checked at COMMIT (the engine turns foreign keys on).
    "sqlite": [
        "CREATE TABLE deferred_parents (id INTEGER PRIMARY KEY)",
        "CREATE TABLE deferred_items (id INTEGER PRIMARY KEY,"
        " k INTEGER REFERENCES deferred_parents (id) DEFERRABLE INITIALLY DEFERRED)",
    ],
    # Nothing is checked at COMMIT: the connection is killed before it.
    "mysql": ["CREATE TABLE deferred_items (id INTEGER AUTO_INCREMENT PRIMARY KEY, k INTEGER)"],
}


@pytest.fixture
async def deferred(db: IO, backend: str, backend_dbs: BackendDatabases) -> AsyncIterator[IO]:
    config = backend_dbs.config("default")
    ConnectionManager.configure({"deferred": config})
    with ConnectionManager.engine("deferred").begin() as conn:
        conn.exec_driver_sql("DROP TABLE IF EXISTS deferred_items")
        conn.exec_driver_sql("DROP TABLE IF EXISTS deferred_parents")
        for statement in _DDL[backend]:
            conn.exec_driver_sql(statement)
    yield db
    await ConnectionManager.aremove("deferred")


async def _break_the_commit(io: IO, backend: str, tx: Transaction) -> None:
    await io(Deferred).create(k=1)
    if backend == "postgresql":
        await io(Deferred).create(k=1)  # a duplicate, found at COMMIT
    elif backend == "mysql":
        connection_id = (await io(Deferred).execute_raw("SELECT CONNECTION_ID() AS id")).scalar()
        killer = sa.create_engine(ConnectionManager.engine("deferred").url, poolclass=sa.pool.NullPool)
        with killer.connect() as conn:
            conn.exec_driver_sql(f"KILL {int(connection_id)}")
        killer.dispose()


async def test_a_failed_commit_leaves_the_thread_or_task_clean(deferred: IO, backend: str) -> None:
    io = deferred
    for _ in range(2):  # and again: nothing was left behind by the first failure
        # (A COMMIT on a killed link may also be reported as an unknown outcome, an ActiveRecordError.)
        with pytest.raises((DBAPIError, activerecord.ActiveRecordError)):
            async with io.transaction(Deferred) as tx:
                await _break_the_commit(io, backend, tx)
        assert _transaction.current("deferred") is None
        assert await io(Deferred.find()).count() == 0
    await io(Deferred).create(k=None)
    async with io.transaction(Deferred):
        await io(Deferred).create(k=None)
    assert await io(Deferred.find()).count() == 2


async def test_a_failed_rollback_leaves_the_thread_or_task_clean(deferred: IO, backend: str) -> None:
    io = deferred

    class Boom(Exception):
        pass

    with pytest.raises((Boom, DBAPIError, activerecord.ActiveRecordError)):
        async with io.transaction(Deferred):
            await io(Deferred).create(k=None)
            if backend == "mysql":
                connection_id = (await io(Deferred).execute_raw("SELECT CONNECTION_ID() AS id")).scalar()
                killer = sa.create_engine(ConnectionManager.engine("deferred").url, poolclass=sa.pool.NullPool)
                with killer.connect() as conn:
                    conn.exec_driver_sql(f"KILL {int(connection_id)}")
                killer.dispose()
            raise Boom
    assert _transaction.current("deferred") is None
    assert await io(Deferred.find()).count() == 0
    await io(Deferred).create(k=None)
    assert await io(Deferred.find()).count() == 1


@pytest.mark.modes("async")
async def test_one_greenlet_hop_per_operation(db: IO, monkeypatch: pytest.MonkeyPatch) -> None:
    hops: list[Any] = []
    inner = greenlets._run

    async def counted(fn: Any, *args: Any, **kwargs: Any) -> Any:
        hops.append(fn)
        return await inner(fn, *args, **kwargs)

    monkeypatch.setattr(greenlets, "_run", counted)
    order = await Order.acreate(user_id=1)
    await Order.find_by_id(order.id).aone()
    await order.aupdate(status="paid")
    await order.adelete()
    assert len(hops) == 4  # however many statements each one ran
    # A save with hooks: its transaction, hooks and write in one hop; the async hook's own
    # acreate() is a second operation.
    hops.clear()
    await AsyncHooked.acreate(name="x")
    assert len(hops) == 2
