"""The PostgreSQL harness replicates, lags on demand, survives replica restarts and cleans up."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from .pg_cluster import PgCluster, PgNode

DATABASE = "harness_checks"


@pytest.fixture(scope="module")
def engines(pg_cluster: PgCluster) -> Iterator[dict[str, sa.Engine]]:
    """Engines on the test database for ``primary``, ``replica1`` and ``replica2``."""
    pg_cluster.create_database(DATABASE)
    nodes = [pg_cluster.primary, *pg_cluster.replicas]
    # NullPool: a pooled connection would be dead after a replica restart.
    by_name = {node.name: sa.create_engine(node.url(DATABASE), poolclass=NullPool) for node in nodes}
    yield by_name
    for engine in by_name.values():
        engine.dispose()


def execute(engine: sa.Engine, statement: str) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text(statement))


def count(engine: sa.Engine, table: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())


def test_url_and_config_point_at_the_node(pg_cluster: PgCluster) -> None:
    node = pg_cluster.primary
    assert node.url() == f"postgresql+psycopg://postgres@127.0.0.1:{node.port}/postgres"
    assert node.url("app", driver="asyncpg") == f"postgresql+asyncpg://postgres@127.0.0.1:{node.port}/app"
    assert node.config("app") == {
        "driver": "postgresql",
        "host": "127.0.0.1",
        "port": node.port,
        "database": "app",
        "user": "postgres",
    }
    ports = {node.port for node in [pg_cluster.primary, *pg_cluster.replicas]}
    assert len(ports) == 3
    assert 5432 not in ports


def test_table_created_on_primary_appears_on_every_replica(
    pg_cluster: PgCluster, engines: dict[str, sa.Engine]
) -> None:
    execute(engines["primary"], "CREATE TABLE ddl_check (id int PRIMARY KEY)")
    execute(engines["primary"], "INSERT INTO ddl_check VALUES (1)")

    pg_cluster.wait_for_replay()

    assert count(engines["replica1"], "ddl_check") == 1
    assert count(engines["replica2"], "ddl_check") == 1


def test_paused_replica_lags_until_resumed(pg_cluster: PgCluster, engines: dict[str, sa.Engine]) -> None:
    replica1 = pg_cluster.replicas[0]
    execute(engines["primary"], "CREATE TABLE lag_check (id int PRIMARY KEY)")
    pg_cluster.wait_for_replay()

    pg_cluster.pause_replay(replica1)
    try:
        execute(engines["primary"], "INSERT INTO lag_check VALUES (1)")
        pg_cluster.wait_for_replay()  # skips the paused replica1

        assert count(engines["replica1"], "lag_check") == 0
        assert count(engines["replica2"], "lag_check") == 1
    finally:
        pg_cluster.resume_replay(replica1)

    pg_cluster.wait_for_replay()
    assert count(engines["replica1"], "lag_check") == 1


def test_stopped_replica_refuses_connections_and_catches_up_after_start(
    pg_cluster: PgCluster, engines: dict[str, sa.Engine]
) -> None:
    replica1 = pg_cluster.replicas[0]
    execute(engines["primary"], "CREATE TABLE restart_check (id int PRIMARY KEY)")

    pg_cluster.stop_replica(replica1)
    try:
        assert not replica1.is_running()
        with pytest.raises(sa.exc.OperationalError, match="refused"):
            engines["replica1"].connect()
        # Written while replica1 is down: its replication slot must keep this WAL for it.
        execute(engines["primary"], "INSERT INTO restart_check VALUES (1)")
    finally:
        pg_cluster.start_replica(replica1)

    assert replica1.is_running()
    pg_cluster.wait_for_replay()
    assert count(engines["replica1"], "restart_check") == 1


@pytest.mark.parametrize("replica_index", [0, 1])
def test_writes_to_a_replica_are_rejected(
    pg_cluster: PgCluster, engines: dict[str, sa.Engine], replica_index: int
) -> None:
    replica = pg_cluster.replicas[replica_index]

    with pytest.raises(sa.exc.DBAPIError) as raised:
        execute(engines[replica.name], "CREATE TABLE must_fail (id int)")

    assert isinstance(raised.value.orig, psycopg.errors.ReadOnlySqlTransaction)


def test_replica_of_another_cluster_is_refused(pg_cluster: PgCluster, tmp_path: Path) -> None:
    stranger = PgNode("replica1", tmp_path / "replica1", 1, tmp_path)

    with pytest.raises(ValueError, match="not a replica of this cluster"):
        pg_cluster.pause_replay(stranger)


def test_close_stops_servers_and_removes_files(pg_bindir: Path) -> None:
    with PgCluster(replicas=0, bindir=pg_bindir) as cluster:
        primary = cluster.primary
        root = primary.datadir.parent
        engine = sa.create_engine(primary.url(), poolclass=NullPool)
        assert count(engine, "pg_database") >= 1

    assert not root.exists()
    with pytest.raises(sa.exc.OperationalError, match="refused"):
        engine.connect()
    cluster.close()  # idempotent
