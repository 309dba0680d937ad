"""Replica metrics on a real PostgreSQL primary with streaming standbys: each replica's measured lag
as a gauge, and a replica over the lag bound counted as skipped."""

from __future__ import annotations

import asyncio

from activerecord import ops
from activerecord.ops.metrics import LAG

from .dual import IO
from .harness.pg_cluster import PgCluster
from .models import Order
from .test_replicas_pg import cluster_db, configure, io, read_port  # noqa: F401 (fixtures)


async def test_replica_lag_is_reported_and_a_lagging_replica_counted_as_skipped(
    io: IO,  # noqa: F811
    cluster_db: PgCluster,  # noqa: F811
) -> None:
    metrics = ops.instrument()
    try:
        configure(cluster_db, max_lag=0.2, lag_check_interval=0, retry_after=0.5, read_your_writes=False)
        first, second = cluster_db.replicas
        cluster_db.pause_replay(first)
        await io(Order).create(user_id=4)
        cluster_db.wait_for_replay()  # the other standby has the write: only the paused one lags
        await asyncio.sleep(0.3)
        assert {await read_port(io) for _ in range(6)} == {second.port}
        lags = {
            dict(labels)["activerecord.node"]: value
            for family in metrics.collect()
            if family.name == LAG.name
            for labels, value in family.series.items()
        }
        (paused,) = [lag for node, lag in lags.items() if f":{first.port}/" in node]
        assert isinstance(paused, float) and paused > 0.2
        assert metrics.value("activerecord.replica.skips", {"reason": "lag"}) >= 1
        assert all(
            dict(k)["activerecord.connection"] == "orders"
            for f in metrics.collect()
            if f.name == LAG.name
            for k in f.series
        )
    finally:
        ops.uninstrument()
