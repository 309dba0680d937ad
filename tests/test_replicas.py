"""Read replicas on every backend: configuration, explicit and automatic routing, scopes,
prevent_writes, replica faults, selection and read-your-own-writes.

Here a "replica" is a separate database on the same server (or another SQLite file), seeded with
a marker row, so each read shows which node served it. Real streaming replication (lag, catch-up,
a stopped standby) is exercised in test_replicas_pg.py.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import AsyncIterator, Callable
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from activerecord import ActiveRecord, ConnectionManager, ReadOnlyError, metadata_for
from activerecord.connections import execute as _execute
from activerecord.engine import operations as _operations
from activerecord.errors import ConfigurationError

from .backends import BackendDatabases
from .dual import IO, off_loop
from .models import Order

MARKER_USER = 0  # marker rows: user_id 0, status = the node's label


class Replicated:
    """Connection "orders" as a primary and two replica databases, each with a marker row."""

    def __init__(self, backend_dbs: BackendDatabases) -> None:
        self.dbs = backend_dbs
        self.primary = backend_dbs.config("orders")
        self.reads = [backend_dbs.config("orders_r1"), backend_dbs.config("orders_r2")]
        self._engines: list[sa.Engine] = []
        for label, cfg in zip(("r1", "r2"), self.reads, strict=True):
            self._prepare(cfg, label)

    def _prepare(self, cfg: dict[str, Any], label: str) -> None:
        ConnectionManager.configure({"_replica_setup": cfg})
        engine = ConnectionManager.engine("_replica_setup")
        with engine.begin() as conn:
            metadata_for("orders").create_all(conn)
            for table in reversed(metadata_for("orders").sorted_tables):
                conn.execute(table.delete())
        off_loop(Order.create, user_id=MARKER_USER, status=label, using="_replica_setup")
        ConnectionManager.remove("_replica_setup")

    def configure(self, reads: list[dict[str, Any]] | None = None, **options: Any) -> None:
        """(Re)configure "orders" with these read nodes (default: r1, r2) and options."""
        ConnectionManager.configure(
            {"orders": {"write": self.primary, "read": self.reads if reads is None else reads, **options}}
        )
        if not off_loop(Order.find().using_primary().where(user_id=MARKER_USER).exists):
            off_loop(Order.create, user_id=MARKER_USER, status="primary")
        ConnectionManager.forget_write_positions()

    def missing(self, name: str) -> dict[str, Any]:
        """Settings of a database that does not exist yet (so connecting to it fails)."""
        if self.dbs.backend == "sqlite":
            base = Path(str(self.reads[0]["database"])).parent
            return {"driver": "sqlite", "database": str(base / f"{name}_dir" / f"{name}.db")}
        return {**self.reads[0], "database": f"ar_{self.dbs.tag}_{name}".lower()}

    def create_missing(self, name: str, label: str) -> None:
        """Make the database of `missing(name)` exist, with its marker row."""
        if self.dbs.backend == "sqlite":
            Path(str(self.missing(name)["database"])).parent.mkdir()
            cfg = self.missing(name)
        else:
            cfg = self.dbs.config(name)
        self._prepare(cfg, label)


@pytest.fixture
async def rep(db: IO, backend_dbs: BackendDatabases) -> AsyncIterator[Replicated]:
    replicated = Replicated(backend_dbs)
    replicated.configure()
    yield replicated
    ConnectionManager.forget_write_positions()


async def served_by(db: IO, query: Any) -> set[str]:
    """The labels of the nodes whose marker rows the query saw."""
    rows = await db(query.where(Order.user_id == MARKER_USER)).all()
    return {row.status for row in rows}


# -- the seed's sample ------------------------------------------------------------------------


async def test_seed_sample_write_then_read_from_replica(db: IO, rep: Replicated) -> None:
    new_order = Order(user_id=42, total=10)
    await db(new_order).save()
    # Read-your-own-writes: this context just wrote, so its replica read is served where the
    # order is (the primary) until the replicas can be assumed to have it.
    orders = await db(Order.find().using_read_replica()).all()
    assert new_order.id in {o.id for o in orders}
    ConnectionManager.forget_write_positions()
    assert await served_by(db, Order.find().using_read_replica()) <= {"r1", "r2"}


# -- explicit routing -------------------------------------------------------------------------


async def test_explicit_mode_reads_go_to_the_primary_unless_asked(db: IO, rep: Replicated) -> None:
    assert await served_by(db, Order.find()) == {"primary"}
    assert await served_by(db, Order.find().using_read_replica()) <= {"r1", "r2"}
    assert await served_by(db, Order.find().using_read_replica().using_primary()) == {"primary"}
    assert await db(Order.find().using_read_replica().where(user_id=MARKER_USER)).count() == 1
    found = await db(Order.find().using_read_replica().where(user_id=MARKER_USER)).one()
    assert found.status in {"r1", "r2"}


async def test_round_robin_alternates(db: IO, rep: Replicated) -> None:
    seen = [next(iter(await served_by(db, Order.find().using_read_replica()))) for _ in range(6)]
    assert set(seen) == {"r1", "r2"}
    assert all(a != b for a, b in pairwise(seen))


async def test_weighted_selection_follows_weights(db: IO, rep: Replicated) -> None:
    heavy = {**rep.reads[0], "weight": 9}
    rep.configure([heavy, rep.reads[1]], selection="weighted")
    seen = [next(iter(await served_by(db, Order.find().using_read_replica()))) for _ in range(200)]
    share = seen.count("r1") / len(seen)
    assert 0.75 < share < 0.99


async def test_connected_to_scope_and_its_nesting(db: IO, rep: Replicated) -> None:
    if db.is_async:
        async with ConnectionManager.connected_to("orders", role="reading"):
            assert await served_by(db, Order.find()) <= {"r1", "r2"}
            async with ConnectionManager.connected_to("orders", role="writing"):
                assert await served_by(db, Order.find()) == {"primary"}
            # The query's own hint beats the scope.
            assert await served_by(db, Order.find().using_primary()) == {"primary"}
    else:
        with ConnectionManager.connected_to("orders", role="reading"):
            assert await served_by(db, Order.find()) <= {"r1", "r2"}
            with ConnectionManager.connected_to("orders", role="writing"):
                assert await served_by(db, Order.find()) == {"primary"}
            assert await served_by(db, Order.find().using_primary()) == {"primary"}
    assert await served_by(db, Order.find()) == {"primary"}
    # A scope on another connection name does not touch "orders".
    with ConnectionManager.connected_to("users", role="reading"):
        assert await served_by(db, Order.find()) == {"primary"}
    with ConnectionManager.connected_to(role="reading"):  # every connection
        assert await served_by(db, Order.find()) <= {"r1", "r2"}


async def test_scopes_stay_in_their_thread_and_task(db: IO, rep: Replicated) -> None:
    results: dict[str, set[str]] = {}
    inside = threading.Event()
    release = threading.Event()

    def reader() -> None:
        with ConnectionManager.connected_to("orders"):
            inside.set()
            release.wait(5)
            results["thread"] = {o.status for o in Order.find().where(Order.user_id == MARKER_USER).all()}

    thread = threading.Thread(target=reader)
    thread.start()
    inside.wait(5)
    # The other thread's scope is open right now, and this one still reads the primary.
    assert await served_by(db, Order.find()) == {"primary"}
    release.set()
    thread.join(5)
    assert results["thread"] <= {"r1", "r2"}

    async def task_reads() -> set[str]:
        async with ConnectionManager.connected_to("orders"):
            await asyncio.sleep(0.01)
            return await served_by(db, Order.find())

    task = asyncio.ensure_future(task_reads())
    await asyncio.sleep(0)
    assert await served_by(db, Order.find()) == {"primary"}
    assert await task <= {"r1", "r2"}


async def test_named_replica_is_addressable_and_read_only(db: IO, rep: Replicated) -> None:
    rep.configure([{**rep.reads[0], "name": "orders_replica_1"}, rep.reads[1]])
    assert await served_by(db, Order.find().using("orders_replica_1")) == {"r1"}
    with pytest.raises(ReadOnlyError):
        await db(Order).create(user_id=5, using="orders_replica_1")
    with pytest.raises(ConfigurationError):
        ConnectionManager.primaries("orders_replica_1")
    assert [name for name, _ in ConnectionManager.primaries("orders")] == ["orders"]


# -- writes never reach a replica ---------------------------------------------------------------


async def test_writes_under_reading_role_or_prevent_writes_raise(db: IO, rep: Replicated) -> None:
    order = await db(Order).create(user_id=7)
    attempts: list[Callable[[], Any]] = [
        lambda: db(Order).create(user_id=8),
        lambda: db(order).update(status="paid"),
        lambda: db(order).delete(),
        lambda: db(Order.find().where(user_id=7)).update_all(status="x"),
        lambda: db(Order.find().where(user_id=7)).delete_all(),
        lambda: db(ActiveRecord).execute_raw("DELETE FROM orders", using="orders"),
    ]
    for scope in (
        lambda: ConnectionManager.prevent_writes(),
        lambda: ConnectionManager.prevent_writes("orders"),
        lambda: ConnectionManager.connected_to("orders", role="reading"),
    ):
        for attempt in attempts:
            with scope(), pytest.raises(ReadOnlyError):
                await attempt()
    # Reads (including read-only raw SQL) still work under prevent_writes.
    with ConnectionManager.prevent_writes():
        assert (await db(ActiveRecord).execute_raw("SELECT 1 AS one", using="orders")).scalar() == 1
        assert await db(Order.find().where(user_id=7)).count() == 1
    # A prevent_writes scope for another connection leaves "orders" writable.
    with ConnectionManager.prevent_writes("users"):
        await db(order).update(status="paid")
    with pytest.raises(ReadOnlyError):
        await db(Order.find().using_read_replica().where(user_id=7)).delete_all()
    reloaded = await db(Order.find_by_id(order.id)).one()
    assert reloaded.status == "paid"  # nothing else was written


async def test_prevent_writes_inside_a_transaction(db: IO, rep: Replicated) -> None:
    async with db.transaction(Order):
        with ConnectionManager.prevent_writes("orders"), pytest.raises(ReadOnlyError):
            await db(Order).create(user_id=9)
        assert await served_by(db, Order.find().using_read_replica()) == {"primary"}
    assert await db(Order.find().where(user_id=9)).count() == 0


# -- automatic routing --------------------------------------------------------------------------


async def test_automatic_routing(db: IO, rep: Replicated) -> None:
    rep.configure(routing="automatic")
    assert await served_by(db, Order.find()) <= {"r1", "r2"}
    assert await served_by(db, Order.find().using_primary()) == {"primary"}
    # Inside a transaction every statement for the connection uses the transaction's connection.
    async with db.transaction(Order):
        assert await served_by(db, Order.find()) == {"primary"}
        await db(Order).create(user_id=11)
        assert await db(Order.find().where(user_id=11)).count() == 1
    # Writes go to the primary; the write then pins this context's reads there (read-your-writes).
    assert await served_by(db, Order.find()) == {"primary"}
    ConnectionManager.forget_write_positions()
    assert await served_by(db, Order.find()) <= {"r1", "r2"}
    with ConnectionManager.connected_to("orders", role="writing"):
        assert await served_by(db, Order.find()) == {"primary"}


async def test_automatic_routing_sends_locking_reads_to_the_primary(db: IO, rep: Replicated) -> None:
    rep.configure(routing="automatic")
    stmt = Order.find().where(Order.user_id == MARKER_USER).statement
    loader = Order._ar_loader(None)
    for statement, expected in ((stmt, {"r1", "r2"}), (stmt.with_for_update(), {"primary"})):
        rows = await db(_execute).run("orders", False, _operations.fetch_all, statement, loader)
        assert {r.status for r in rows} <= expected


# -- faults -----------------------------------------------------------------------------------


async def test_unreachable_replica_is_skipped_then_probed_again(db: IO, rep: Replicated) -> None:
    late = f"late_{db.mode}"
    rep.configure([rep.missing(late), rep.reads[1]], retry_after=0.3)
    for _ in range(4):
        assert await served_by(db, Order.find().using_read_replica()) == {"r2"}
    rep.create_missing(late, "late")
    await asyncio.sleep(0.35)
    seen = set()
    for _ in range(4):
        seen |= await served_by(db, Order.find().using_read_replica())
    assert seen == {"late", "r2"}


async def test_every_replica_down_falls_back_to_the_primary(db: IO, rep: Replicated) -> None:
    rep.configure([rep.missing("gone_a"), rep.missing("gone_b")])
    assert await served_by(db, Order.find().using_read_replica()) == {"primary"}
    rep.configure([rep.missing("gone_a")], routing="automatic")
    assert await served_by(db, Order.find()) == {"primary"}
    assert [len(b) for b in await db.batches(Order.find().where(user_id=MARKER_USER), 10)] == [1]


async def test_streaming_reads_follow_the_routing(db: IO, rep: Replicated) -> None:
    query = Order.find().where(Order.user_id == MARKER_USER)
    assert {o.status for o in await db.iterate(query.using_read_replica())} <= {"r1", "r2"}
    with ConnectionManager.connected_to("orders"):
        assert {o.status for o in await db.iterate(query)} <= {"r1", "r2"}
    assert {o.status for o in await db.iterate(query)} == {"primary"}


# -- read-your-own-writes without WAL positions -----------------------------------------------


async def test_read_your_writes_delay_and_token(db: IO, rep: Replicated) -> None:
    # Separate databases stand in for replicas here: on PostgreSQL they are no standbys, so their
    # positions cannot be compared and the delay rule applies there too.
    # Long enough that a loaded machine still reads within it; the test waits it out below.
    delay = 2.0
    rep.configure(replica_delay=delay)
    await db(Order).create(user_id=21)
    assert await served_by(db, Order.find().using_read_replica()) == {"primary"}
    token = ConnectionManager.export_write_position()
    assert token

    # Another service (a fresh context) that imports the token also reads the primary.
    def other_service() -> tuple[set[str], set[str]]:
        before = {o.status for o in Order.find().using_read_replica().where(Order.user_id == MARKER_USER).all()}
        ConnectionManager.import_write_position(token)
        after = {o.status for o in Order.find().using_read_replica().where(Order.user_id == MARKER_USER).all()}
        return before, after

    before, after = await asyncio.to_thread(contextvars.Context().run, other_service)
    assert before <= {"r1", "r2"}
    assert after == {"primary"}
    await asyncio.sleep(delay + 0.1)
    assert await served_by(db, Order.find().using_read_replica()) <= {"r1", "r2"}
    # Turned off, a write does not hold reads on the primary.
    rep.configure(read_your_writes=False)
    await db(Order).create(user_id=22)
    assert await served_by(db, Order.find().using_read_replica()) <= {"r1", "r2"}


async def test_read_your_writes_counts_a_transaction_once_it_commits(db: IO, rep: Replicated) -> None:
    rep.configure(replica_delay=30)
    with pytest.raises(RuntimeError):
        async with db.transaction(Order):
            await db(Order).create(user_id=23)
            raise RuntimeError("roll back")
    # Rolled back: nothing was written, so replica reads stay on the replicas.
    assert await served_by(db, Order.find().using_read_replica()) <= {"r1", "r2"}
    async with db.transaction(Order):
        await db(Order).create(user_id=24)
        async with db.transaction(Order):  # a savepoint
            await db(Order).create(user_id=25)
    assert await served_by(db, Order.find().using_read_replica()) == {"primary"}
    assert await db(Order.find().using_read_replica().where(Order.user_id > 23)).count() == 2


def test_a_bad_token_is_refused() -> None:
    with pytest.raises(ConfigurationError):
        ConnectionManager.import_write_position("not-a-token")
    ConnectionManager.import_write_position("")  # nothing written: nothing to adopt


# -- configuration ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"read": [{"driver": "sqlite"}]}, "need a 'write'"),
        (
            {"write": {"driver": "sqlite"}, "read": [{"driver": "postgresql", "host": "h", "database": "d"}]},
            "primary is",
        ),
        ({"write": {"driver": "sqlite"}, "routing": "sometimes"}, "'routing'"),
        ({"write": {"driver": "sqlite"}, "selection": "random"}, "'selection'"),
        ({"write": {"driver": "sqlite"}, "max_lag": -1}, "'max_lag'"),
        ({"write": {"driver": "sqlite"}, "read_your_writes": "yes"}, "'read_your_writes'"),
        ({"write": {"driver": "sqlite"}, "replicas": []}, "unknown setting"),
        ({"write": {"driver": "sqlite"}, "read": "sqlite://"}, "'read' must be a list"),
        ({"write": {"driver": "sqlite"}, "read": [{"driver": "sqlite", "weight": 0}]}, "weight"),
    ],
)
def test_bad_replica_settings_are_refused(entry: dict[str, Any], message: str) -> None:
    ConnectionManager.configure({"cfg_check": {"driver": "sqlite"}})
    before = ConnectionManager.engine("cfg_check")
    with pytest.raises(ConfigurationError, match=message):
        ConnectionManager.configure({"cfg_check": entry})
    assert ConnectionManager.engine("cfg_check") is before
    ConnectionManager.remove("cfg_check")


def test_passwords_stay_out_of_reprs_and_errors() -> None:
    secret = "s3cr3t-pw"
    node = {"driver": "postgresql", "host": "127.0.0.1", "database": "d", "user": "u", "password": secret}
    ConnectionManager.configure({"pw_check": {"write": node, "read": [node]}})
    try:
        cluster = ConnectionManager.cluster("pw_check")
        assert secret not in repr(cluster)
        assert secret not in repr(cluster.replicas[0])
        assert secret not in repr(ConnectionManager)
        with pytest.raises(ConfigurationError) as info:
            ConnectionManager.configure({"pw_check": {"write": node, "read": [{**node, "driver": "mysql"}]}})
        assert secret not in str(info.value)
    finally:
        ConnectionManager.remove("pw_check")


def test_scope_arguments_are_checked() -> None:
    with pytest.raises(ConfigurationError):
        ConnectionManager.connected_to("orders", role="replica")
    with pytest.raises(ConfigurationError):
        ConnectionManager.connected_to("", role="reading")
