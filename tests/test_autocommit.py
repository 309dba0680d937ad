"""A single statement outside a transaction runs in autocommit: one round trip, seen from outside.

On PostgreSQL and MariaDB the connection goes through a counting loopback proxy
(`harness.proxy.Proxy.flights`: what the client sent between two replies of the server); on
SQLite, which has no server, SQLite's own trace of the statements it runs stands in for it.
Operations that may send several statements, and everything inside ``transaction()``, keep
their transaction; a write whose reply is lost is still an unknown outcome; read-your-own-writes
and commit hooks keep working; and a connection never goes back to the pool in a mode the next
user does not expect.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.util import await_only

from activerecord import ActiveRecord, ConnectionManager, Field, PrimaryKeyField, StringField
from activerecord.errors import CommitOutcomeUnknown, Retry, is_retryable, retry_class
from activerecord.multidb import positions as _positions

from .backends import BackendDatabases
from .dual import IO
from .harness.proxy import Proxy
from .models import Author, Order

servers = pytest.mark.backends("postgresql", "mysql")

COUNTED = "counted"
#: Runs before the one counted: psycopg prepares a statement on its sixth run (after prepare_threshold=5).
WARM_UP = 6


committed: list[str] = []


class Hooked(ActiveRecord):
    """A model whose after_commit hook records what was committed."""

    __tablename__ = "autocommit_hooked"
    __connection__ = COUNTED
    id: Field[int] = PrimaryKeyField()
    name: Field[str] = StringField(max_length=40)

    def after_commit(self) -> None:
        committed.append(self.name)


def autocommitting(db: IO, config: dict[str, Any]) -> bool:
    """Whether single statements run in autocommit on this node: everywhere but asyncpg through
    pgbouncer, where SQLAlchemy's adapter prepares a statement in a round trip of its own that
    pgbouncer may send to another server connection (see `AsyncpgDialect`)."""
    return not (db.is_async and config.get("pgbouncer"))


class Observer:
    """Round trips made on connection ``counted`` (a pool of one connection)."""

    def __init__(self, backend: str, proxy: Proxy | None, autocommitting: bool = True) -> None:
        self.backend = backend
        self.proxy = proxy
        self.autocommitting = autocommitting
        self.statements: list[str] = []  # SQLite's trace

    def recount(self) -> None:
        if self.proxy is not None:
            self.proxy.recount()
        self.statements.clear()

    async def trips(self) -> list[bytes] | list[str]:
        """What went to the server since `recount`, one entry per round trip."""
        await asyncio.sleep(0.05)  # (anything sent without waiting for a reply has arrived)
        if self.proxy is not None:
            return list(self.proxy.flights)
        return list(self.statements)

    async def assert_single(self, label: str, call: Callable[[], Awaitable[Any]]) -> None:
        """``call()`` is one round trip; in a transaction of its own where the node does not
        autocommit."""
        n = await self.count(call)
        trips = await self.trips()
        if self.autocommitting:
            assert n == 1, (label, n, trips)
        else:
            assert b"BEGIN" in trips[0], (label, trips)  # type: ignore[operator]

    async def count(self, call: Callable[[], Awaitable[Any]]) -> int:
        """Round trips of ``call()`` once it is warm: connecting, first-use set-up and statements
        the driver prepares (asyncpg at once, psycopg on its sixth run) are not what
        is counted."""
        for _ in range(WARM_UP):
            await call()
        self.recount()
        await call()
        return len(await self.trips())


def _trace(driver: Any, sink: list[str]) -> None:
    connection = getattr(driver, "_connection", None)
    if connection is None:  # sqlite3
        driver.set_trace_callback(sink.append)
    else:  # aiosqlite: its sqlite3 connection belongs to aiosqlite's thread
        await_only(connection._execute(connection._conn.set_trace_callback, sink.append))


@pytest.fixture
async def observed(db: IO, backend_dbs: BackendDatabases, backend: str) -> AsyncIterator[Observer]:
    config = {**backend_dbs.config("default"), "pool_size": 1, "max_overflow": 0}
    tables = [Author.__table__, Hooked.__table__]
    if backend == "sqlite":
        observer = Observer(backend, None)
        ConnectionManager.configure({COUNTED: config})
        engine = (
            ConnectionManager.async_engine(COUNTED).sync_engine if db.is_async else ConnectionManager.engine(COUNTED)
        )
        sa.event.listen(engine, "connect", lambda driver, _: _trace(driver, observer.statements))
        _create(tables)
        yield observer
        await ConnectionManager.aremove(COUNTED)
        return
    with Proxy(config["port"]) as proxy:
        ConnectionManager.configure({COUNTED: {**config, "host": "127.0.0.1", "port": proxy.port}})
        _create(tables)
        yield Observer(backend, proxy, autocommitting(db, config))
        await ConnectionManager.aremove(COUNTED)


def _create(tables: list[sa.Table]) -> None:
    engine = ConnectionManager.engine("default")
    with engine.begin() as conn:
        for table in tables:
            table.create(conn, checkfirst=True)
            conn.execute(table.delete())


async def test_single_statements_outside_a_transaction_are_one_round_trip(db: IO, observed: Observer) -> None:
    made = [await db(Author).create(name=f"a{i}", using=COUNTED) for i in range(4)]
    pk = made[0].id
    found = Author.find().using(COUNTED)
    names = iter(range(100))
    single: dict[str, Callable[[], Awaitable[Any]]] = {
        "insert": lambda: db(Author).create(name=f"n{next(names)}", using=COUNTED),
        "get by key": lambda: db(Author.find_by_id(pk).using(COUNTED)).one(),
        "first": lambda: db(found.where(Author.name == "a1")).first(),
        "one_or_none": lambda: db(found.where(Author.name == "a1")).one_or_none(),
        "all": lambda: db(found.order_by(Author.id)).all(),
        "count": lambda: db(found).count(),
        "exists": lambda: db(found.where(Author.name == "a2")).exists(),
        "update a record": lambda: db(made[1]).update(age=next(names)),
        "reload": lambda: db(made[1]).reload(),
        "update_all": lambda: db(found.where(Author.name == "a2")).update_all(age=next(names)),
        "delete_all": lambda: db(found.where(Author.name == "nobody")).delete_all(),
    }
    for label, call in single.items():
        await observed.assert_single(label, call)
        if observed.backend == "mysql":
            sent = b"".join(await observed.trips()).upper()  # type: ignore[arg-type]
            for word in (b"BEGIN", b"COMMIT", b"ROLLBACK", b"AUTOCOMMIT"):
                assert word not in sent, (label, word)
    # A record deleted: one round trip too.
    await db(made[2]).delete()
    observed.recount()
    await db(made[3]).delete()
    assert len(await observed.trips()) == 1 or not observed.autocommitting
    assert await db(found).count() == 2 + WARM_UP + 1  # a0, a1 and the inserts


async def test_transactions_and_operations_of_several_statements_keep_their_transaction(
    db: IO, observed: Observer
) -> None:
    async def in_transaction() -> None:
        async with db.transaction(using=COUNTED):
            await db(Author).create(name="t", using=COUNTED)

    # BEGIN, the INSERT, COMMIT (asyncpg through pgbouncer prepares in a round trip of its own).
    def in_a_transaction(trips: int) -> bool:
        return trips == 3 if observed.autocommitting else trips > 3

    assert in_a_transaction(await observed.count(in_transaction))
    # insert_many may send several statements: it keeps its transaction.
    many = [{"name": "m1"}, {"name": "m2"}]
    assert in_a_transaction(await observed.count(lambda: db(Author).insert_many(many, using=COUNTED)))
    # A model with hooks saves in a transaction, whose commit runs the after_commit hook.
    committed.clear()
    assert in_a_transaction(await observed.count(lambda: db(Hooked).create(name="h")))
    assert committed == ["h"] * (WARM_UP + 1)


async def test_a_failed_statement_leaves_the_connection_as_the_next_user_expects(db: IO, observed: Observer) -> None:
    first = await db(Author).create(name="x", email="x@example.com", using=COUNTED)
    with pytest.raises(sa.exc.IntegrityError):
        await db(Author).create(name="y", email="x@example.com", using=COUNTED)
    # The one pooled connection is not left in autocommit: a transaction still rolls back whole.
    with pytest.raises(RuntimeError):
        async with db.transaction(using=COUNTED):
            await db(Author).create(name="rolled back", using=COUNTED)
            await db(first).update(age=99)
            raise RuntimeError("undo")
    assert await db(Author.find().using(COUNTED).where(Author.name == "rolled back")).exists() is False
    assert (await db(first).reload()).age is None
    # A transaction with its own isolation level, then single statements again in one round trip.
    async with db.transaction(using=COUNTED, isolation_level="SERIALIZABLE"):
        await db(Author.find().using(COUNTED)).count()
    await observed.assert_single("count", lambda: db(Author.find().using(COUNTED)).count())
    await observed.assert_single("update", lambda: db(first).update(age=next_age()))


_ages = iter(range(1_000))


def next_age() -> int:
    return next(_ages)


@servers
async def test_a_single_write_whose_reply_is_lost_has_an_unknown_outcome(db: IO, backend_dbs: BackendDatabases) -> None:
    config = backend_dbs.config("default")
    with Proxy(config["port"]) as proxy:
        ConnectionManager.configure({"proxied": {**config, "host": "127.0.0.1", "port": proxy.port}})
        try:
            await db(Author).create(name="warm-up", using="proxied")
            proxy.drop_reply_to(b"maybe-lost")
            if not autocommitting(db, config):
                # In a transaction: the link died before COMMIT, nothing is committed, try again.
                with pytest.raises(sa.exc.OperationalError) as lost:
                    await db(Author).create(name="maybe-lost", using="proxied")
                assert is_retryable(lost.value)
                assert await db(Author.find().where(Author.name == "maybe-lost")).count() == 0
                return
            with pytest.raises(CommitOutcomeUnknown) as caught:
                await db(Author).create(name="maybe-lost", using="proxied")
            assert proxy.dropped.is_set()
            assert retry_class(caught.value) is Retry.UNKNOWN_OUTCOME
            assert isinstance(caught.value.__cause__, sa.exc.DBAPIError)
            # The statement reached the server, which committed it (autocommit: it is the commit).
            assert await db(Author.find().where(Author.name == "maybe-lost")).count() == 1
            proxy.passthrough()
            assert await db(Author).create(name="next", using="proxied")  # the next call works
            # A connection that cannot be had is safe to try again: nothing was sent.
            proxy.refuse()
            await ConnectionManager.aremove("proxied")
            ConnectionManager.configure({"proxied": {**config, "host": "127.0.0.1", "port": proxy.port}})
            with pytest.raises(sa.exc.OperationalError) as refused:
                await db(Author).create(name="refused", using="proxied")
            assert not isinstance(refused.value, CommitOutcomeUnknown)
            assert is_retryable(refused.value)
        finally:
            await ConnectionManager.aremove("proxied")


async def test_a_single_write_records_the_primary_position_for_reads(db: IO, backend_dbs: BackendDatabases) -> None:
    primary = backend_dbs.config("orders")
    ConnectionManager.configure({"orders": {"write": primary, "read": [primary], "replica_delay": 30}})
    ConnectionManager.forget_write_positions()
    try:
        assert _positions.pending("orders") is None
        await db(Order).create(user_id=1)
        position = _positions.pending("orders")
        assert position is not None
        # PostgreSQL reports its WAL position, read after the write in autocommit as well.
        assert (position.lsn is not None) == (backend_dbs.backend.startswith("postgresql"))
        # Reads of this context now go to the primary, and see the write.
        assert await db(Order.find().using_read_replica().where(Order.user_id == 1)).count() == 1
    finally:
        ConnectionManager.forget_write_positions()
        ConnectionManager.configure({"orders": primary})
