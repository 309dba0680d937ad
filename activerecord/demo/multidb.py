"""The multi-database part of the demo: a read replica and a sharded user service, on SQLite files.

SQLite has no replication, so the demo stands one in honestly: the "replica" is a second file
that the demo refreshes from the primary with SQLite's backup API. Between two refreshes the
replica lags for real, which is what read-your-own-writes and the routing rules are about.
"""

from __future__ import annotations

import contextvars
import sqlite3
from collections.abc import Callable
from pathlib import Path

from ..connections.manager import ConnectionManager
from ..errors import ReadOnlyError
from ..model.base import ActiveRecord
from ..model.fields import Field, IntegerField, PrimaryKeyField, StringField
from ..model.ids import generate_id

ORDERS = "multidb_orders"
USERS = "multidb_users"
SHARDS = [f"user_shard_{n}" for n in range(4)]


class DemoOrder(ActiveRecord):
    """An order of the replicated order service."""

    __tablename__ = "orders"
    __connection__ = ORDERS

    id: Field[int] = PrimaryKeyField()
    user_id: Field[int] = IntegerField()
    status: Field[str] = StringField(max_length=20, default="pending")


class DemoUser(ActiveRecord):
    """A user of the sharded user service: its id picks the shard (``id % 4``)."""

    __tablename__ = "users"
    __connection__ = USERS
    __shard_key__ = "id"

    id: Field[int] = PrimaryKeyField(big=True, autoincrement=False)
    name: Field[str] = StringField(max_length=50)


class ShardedUserService:
    """The guide's sharded user service."""

    def get_shard_for_user(self, user_id: int) -> str:
        """``user_shard_{user_id % 4}``."""
        return f"user_shard_{user_id % 4}"

    def find_user(self, user_id: int) -> DemoUser:
        """Load a user from its shard."""
        return DemoUser.find_by_id(user_id).using(self.get_shard_for_user(user_id)).one()

    def create_user(self, name: str) -> DemoUser:
        """Make an id first (it decides the shard), then save there."""
        user_id = generate_id()
        return DemoUser.create(id=user_id, name=name, using=self.get_shard_for_user(user_id))


def _replicate(primary: Path, replica: Path) -> None:
    """Copy the primary file over the replica: the demo's stand-in for streaming replication."""
    with sqlite3.connect(primary) as source, sqlite3.connect(replica) as target:
        source.backup(target)
    source.close()
    target.close()


def _in_another_request(fn: Callable[[], int]) -> int:
    # A fresh context: no write of the demo's own context is known there.
    return contextvars.Context().run(fn)


def run_multidb_demo(workdir: Path, out: Callable[[str], None]) -> None:
    """Show read replicas (routing, lag, catch-up, a failed replica) and sharding on SQLite files."""
    workdir.mkdir(parents=True, exist_ok=True)
    primary, replica = workdir / "orders_primary.db", workdir / "orders_replica.db"
    ConnectionManager.configure(
        {
            ORDERS: {
                "write": {"driver": "sqlite", "database": str(primary)},
                "read": [{"driver": "sqlite", "database": str(replica)}],
                # SQLite has no replay position to compare: this request's own writes keep its
                # reads on the primary for this many seconds.
                "replica_delay": 30.0,
            },
            USERS: {"shards": {s: {"driver": "sqlite", "database": str(workdir / f"{s}.db")} for s in SHARDS}},
        }
    )
    try:
        _replica_part(primary, replica, out)
        _shard_part(out)
    finally:
        ConnectionManager.forget_write_positions(ORDERS)
        ConnectionManager.remove(ORDERS)
        ConnectionManager.remove(USERS)


def _replica_part(primary: Path, replica: Path, out: Callable[[str], None]) -> None:
    out("== read replica (SQLite files; the demo copies the primary to the replica to replicate) ==")
    DemoOrder.create_all()
    ConnectionManager.forget_write_positions(ORDERS)
    _replicate(primary, replica)

    def replica_count() -> int:
        return DemoOrder.find().using_read_replica().count()

    order = DemoOrder.create(user_id=1)
    out(f"wrote order {order.id} on the primary")
    out(f"  this request reads it back through using_read_replica(): {replica_count()} order(s)")
    out("    (read-your-own-writes: within replica_delay of its own write, this request reads the primary)")
    out(f"  another request reads the replica, which lags: {_in_another_request(replica_count)} order(s)")
    _replicate(primary, replica)
    out(f"  after replication the replica has it: {_in_another_request(replica_count)} order(s)")

    with ConnectionManager.prevent_writes(ORDERS):
        try:
            DemoOrder.create(user_id=2)
        except ReadOnlyError as exc:
            out(f"  inside prevent_writes(): ReadOnlyError: {exc}")

    ConnectionManager.configure(
        {
            ORDERS: {
                "write": {"driver": "sqlite", "database": str(primary)},
                "read": [{"driver": "sqlite", "database": str(replica.parent / "missing" / "replica.db")}],
            }
        }
    )
    out(
        "reconfigured live with an unreachable replica: reads fall back to the primary -> "
        f"{_in_another_request(replica_count)} order(s)"
    )


def _shard_part(out: Callable[[str], None]) -> None:
    out("== sharded user service (4 SQLite files, shard = id % 4) ==")
    DemoUser.create_all(using=USERS)  # the table on every shard's primary
    service = ShardedUserService()
    users = [service.create_user(name) for name in ("ada", "grace", "edsger", "barbara", "alan", "donald")]
    for user in users:
        out(f"  created {user.name:<8} id={user.id} on {service.get_shard_for_user(user.id)}")
    found = service.find_user(users[2].id)
    out(f"  find_user({found.id}) -> {found.name}")
    out(f"  DemoUser.find_by_id(id) routes by itself: {DemoUser.find_by_id(users[3].id).one().name}")
    everyone = DemoUser.find().on_all_shards()
    out(f"  on_all_shards().count() = {everyone.count()}")
    first_three = [u.name for u in everyone.order_by("name").limit(3).all()]
    out(f"  on_all_shards().order_by('name').limit(3) = {first_three}")
    per_shard = {shard: DemoUser.find().using(shard).count() for shard in SHARDS}
    out(f"  rows per shard: {per_shard}")
