"""Read replicas on a real PostgreSQL primary with two streaming hot standbys (tests/harness).

Lag is made for real by pausing WAL replay on a standby, and a fault by stopping one.
"""

from __future__ import annotations

import asyncio
import contextvars
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from activerecord import ConnectionManager, ReadOnlyError, metadata_for
from activerecord.connections import execute as _execute
from activerecord.multidb.routing import READING, Target

from .dual import IO
from .harness.pg_cluster import PgCluster
from .models import Order

# Unique per run: the session's cluster is shared with other modules, and a failed run may leave one behind.
DATABASE = f"ar_replica_routing_{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def cluster_db(pg_cluster: PgCluster) -> Iterator[PgCluster]:
    pg_cluster.create_database(DATABASE)
    engine = sa.create_engine(pg_cluster.primary.url(DATABASE))
    with engine.begin() as conn:
        metadata_for("orders").create_all(conn)
    engine.dispose()
    pg_cluster.wait_for_replay()
    yield pg_cluster
    # pytest may set a module fixture up again when parametrized tests are regrouped: leave none.
    admin = sa.create_engine(pg_cluster.primary.url("postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
    admin.dispose()


@pytest.fixture
async def io(mode: str, cluster_db: PgCluster) -> AsyncIterator[IO]:
    io = IO(mode)
    yield io
    io.close()
    for replica in cluster_db.replicas:
        if not replica.is_running():
            cluster_db.start_replica(replica)
        cluster_db.resume_replay(replica)
    ConnectionManager.forget_write_positions()
    await ConnectionManager.aremove("orders")


def configure(cluster: PgCluster, **options: Any) -> None:
    """The seed's read-replica configuration, pointed at the harness's servers."""
    ConnectionManager.configure(
        {
            "orders": {
                "write": cluster.primary.config(DATABASE),
                "read": [replica.config(DATABASE) for replica in cluster.replicas],
                **options,
            }
        }
    )


def _port(conn: sa.Connection) -> int:
    return int(conn.execute(sa.text("SELECT inet_server_port()")).scalar_one())


async def read_port(io: IO) -> int:
    """Which server a replica read is served by (its port)."""
    target = Target("orders", READING)
    return int(await io(_execute).run(target, False, _port))


async def test_seed_sample_on_streaming_replicas(io: IO, cluster_db: PgCluster) -> None:
    configure(cluster_db)
    new_order = Order(user_id=1, total=5)
    await io(new_order).save()
    orders = await io(Order.find().using_read_replica()).all()
    assert new_order.id in {o.id for o in orders}
    cluster_db.wait_for_replay()
    replica_ports = {r.port for r in cluster_db.replicas}
    assert {await read_port(io) for _ in range(4)} == replica_ports


async def test_reads_wait_for_a_replica_to_replay_this_contexts_write(io: IO, cluster_db: PgCluster) -> None:
    configure(cluster_db)
    first, second = cluster_db.replicas
    cluster_db.pause_replay(first)
    cluster_db.pause_replay(second)
    order = await io(Order).create(user_id=2)
    # Neither standby has the write: the read goes to the primary, and sees it.
    for _ in range(3):
        assert await read_port(io) == cluster_db.primary.port
        assert await io(Order.find().using_read_replica().where(id=order.id)).count() == 1
    # One standby catches up: reads may use it, never the one still behind.
    cluster_db.resume_replay(second)
    cluster_db.wait_for_replay()
    for _ in range(4):
        assert await read_port(io) == second.port
        assert await io(Order.find().using_read_replica().where(id=order.id)).count() == 1
    cluster_db.resume_replay(first)
    cluster_db.wait_for_replay()
    assert {await read_port(io) for _ in range(4)} == {first.port, second.port}


async def test_a_committed_transaction_holds_reads_until_replayed(io: IO, cluster_db: PgCluster) -> None:
    configure(cluster_db)
    cluster_db.wait_for_replay()
    for replica in cluster_db.replicas:
        cluster_db.pause_replay(replica)
    async with io.transaction(Order):
        order = await io(Order).create(user_id=6)
        assert await read_port(io) == cluster_db.primary.port  # the transaction's connection
    assert await read_port(io) == cluster_db.primary.port
    assert await io(Order.find().using_read_replica().where(id=order.id)).count() == 1
    for replica in cluster_db.replicas:
        cluster_db.resume_replay(replica)
    cluster_db.wait_for_replay()
    assert await read_port(io) in {r.port for r in cluster_db.replicas}


async def test_a_token_carries_the_write_to_another_service(io: IO, cluster_db: PgCluster) -> None:
    configure(cluster_db)
    for replica in cluster_db.replicas:
        cluster_db.pause_replay(replica)
    order = await io(Order).create(user_id=3)
    token = ConnectionManager.export_write_position()

    def called_service(with_token: bool) -> int:
        # A fresh context, as in another process that received the token with the request.
        if with_token:
            ConnectionManager.import_write_position(token)
        return Order.find().using_read_replica().where(id=order.id).count()

    assert await io.blocking(contextvars.Context().run, called_service, False) == 0  # a lagging standby answered
    assert await io.blocking(contextvars.Context().run, called_service, True) == 1  # the token sent it to the primary


async def test_a_replica_over_the_lag_bound_is_skipped(io: IO, cluster_db: PgCluster) -> None:
    configure(cluster_db, max_lag=0.2, lag_check_interval=0, retry_after=0.5, read_your_writes=False)
    first, second = cluster_db.replicas
    cluster_db.pause_replay(first)
    await io(Order).create(user_id=4)
    cluster_db.wait_for_replay()  # the other standby has the write: only the paused one lags
    await asyncio.sleep(0.3)
    assert {await read_port(io) for _ in range(6)} == {second.port}
    cluster_db.resume_replay(first)
    cluster_db.wait_for_replay()
    await asyncio.sleep(0.55)  # retry_after: the skipped standby is probed again
    assert {await read_port(io) for _ in range(6)} == {first.port, second.port}


async def test_a_stopped_replica_is_skipped_and_used_again_after_restart(io: IO, cluster_db: PgCluster) -> None:
    configure(cluster_db, retry_after=0.3)
    first, second = cluster_db.replicas
    assert {await read_port(io) for _ in range(4)} == {first.port, second.port}  # pools warm
    cluster_db.stop_replica(first)
    assert {await read_port(io) for _ in range(6)} == {second.port}
    cluster_db.stop_replica(second)
    assert {await read_port(io) for _ in range(3)} == {cluster_db.primary.port}
    assert await io(Order.find().using_read_replica()).count() >= 0
    cluster_db.start_replica(first)
    cluster_db.start_replica(second)
    cluster_db.wait_for_replay()
    await asyncio.sleep(0.35)
    assert {await read_port(io) for _ in range(6)} == {first.port, second.port}


async def test_writes_never_reach_a_standby(io: IO, cluster_db: PgCluster) -> None:
    configure(cluster_db, routing="automatic")
    async with ConnectionManager.connected_to("orders", role="reading"):
        with pytest.raises(ReadOnlyError):
            await io(Order).create(user_id=5)
    order = await io(Order).create(user_id=5)  # automatic routing: the write goes to the primary
    cluster_db.wait_for_replay()
    ConnectionManager.forget_write_positions()
    assert await read_port(io) in {r.port for r in cluster_db.replicas}
    assert (await io(Order.find_by_id(order.id)).one()).user_id == 5
