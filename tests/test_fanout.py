"""Fan-out over the shards of a group runs the shards concurrently, sync and async: a query over
eight shards costs about the slowest shard, with the merged result unchanged; failures still
aggregate; sync calls on a running event loop are still refused before any shard is asked."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import text

from activerecord import (
    ActiveRecord,
    ConnectionManager,
    PrimaryKeyField,
    ReadOnlyError,
    ShardQueryError,
    ShardWriteError,
    StringField,
    SyncInAsyncError,
)

from .backends import BackendDatabases
from .dual import IO

SHARDS = [f"fan_shard_{n}" for n in range(8)]
SLEEP = 0.02


class Spread(ActiveRecord):
    """One row per shard, placed by ``id % 8``."""

    __tablename__ = "spread"
    __connection__ = "fan_shards"
    __shard_key__ = "id"
    __shard_resolver__ = staticmethod(lambda key: SHARDS[key % len(SHARDS)])

    id: int = PrimaryKeyField(autoincrement=False)
    name: str = StringField(max_length=20)


def _configure(backend_dbs: BackendDatabases, overrides: dict[str, Any] | None = None) -> None:
    configs = {shard: backend_dbs.config(shard) for shard in SHARDS}
    ConnectionManager.configure({"fan_shards": {"shards": {**configs, **(overrides or {})}}})


@pytest.fixture
async def shards(db: IO, backend_dbs: BackendDatabases) -> AsyncIterator[None]:
    _configure(backend_dbs)
    await db.blocking(ActiveRecord.create_all, using="fan_shards", models=[Spread])  # every shard at once
    yield
    _configure(backend_dbs)
    await db.blocking(ActiveRecord.drop_all, using="fan_shards", models=[Spread])
    await ConnectionManager.aremove("fan_shards")


@pytest.mark.backends("postgresql")
async def test_a_query_over_eight_shards_costs_about_the_slowest_shard(db: IO, shards: None) -> None:
    await db(Spread).insert_many([{"id": n, "name": f"n{n}"} for n in range(16)])
    # Every shard sleeps SLEEP once per row: two rows each, so 2 * SLEEP per shard.
    slow = Spread.find().where(text(f"pg_sleep({SLEEP})::text = ''")).order_by(Spread.id.desc()).on_all_shards()
    await db(slow).all()  # the first run opens the shards' connections
    timings = []
    for _ in range(3):
        started = time.perf_counter()
        found = await db(slow).all()
        timings.append(time.perf_counter() - started)
        assert [r.id for r in found] == list(range(15, -1, -1))
    # One after the other it would take 8 shards * 2 * SLEEP; half of that proves they overlap.
    assert min(timings) < len(SHARDS) * 2 * SLEEP * 0.5, timings


async def test_failures_on_some_shards_aggregate(db: IO, shards: None, backend_dbs: BackendDatabases) -> None:
    await db(Spread).insert_many([{"id": n, "name": f"n{n}"} for n in range(8)])
    missing = {"fan_shard_2": backend_dbs.config("fan_empty_a"), "fan_shard_5": backend_dbs.config("fan_empty_b")}
    _configure(backend_dbs, missing)  # two shards whose database lacks the table
    with pytest.raises(ShardQueryError) as read:
        await db(Spread.find().on_all_shards()).count()
    assert sorted(read.value.errors) == ["fan_shard_2", "fan_shard_5"]
    assert sorted(r.id for r in await db(Spread.find().on_all_shards(skip_failed=True)).all()) == [0, 1, 3, 4, 6, 7]
    with pytest.raises(ShardWriteError) as write:
        await db(Spread).insert_many([{"id": n, "name": "again"} for n in range(8, 16)])
    assert sorted(write.value.errors) == ["fan_shard_2", "fan_shard_5"]
    assert sorted(write.value.committed) == [s for s in SHARDS if s not in missing]
    _configure(backend_dbs)
    assert await db(Spread.find().on_all_shards()).count() == 14


@pytest.mark.modes("sync")
async def test_sync_fan_out_on_a_running_loop_is_refused_before_any_shard(db: IO, shards: None) -> None:
    with pytest.raises(SyncInAsyncError, match="all"):
        Spread.find().on_all_shards().all()
    with pytest.raises(SyncInAsyncError):
        Spread.insert_many([{"id": 1, "name": "x"}])
    assert await db(Spread.find().on_all_shards()).count() == 0


async def test_the_callers_routing_scope_holds_on_every_shard(db: IO, shards: None) -> None:
    await db(Spread).insert_many([{"id": n, "name": f"n{n}"} for n in range(8)])
    everyone = Spread.find().on_all_shards()

    async def rename() -> None:
        if db.is_async:
            async with ConnectionManager.prevent_writes():
                await everyone.aupdate_all(name="renamed")
        else:

            def in_scope() -> None:
                with ConnectionManager.prevent_writes():
                    everyone.update_all(name="renamed")

            await db.blocking(in_scope)

    with pytest.raises(ShardQueryError) as refused:
        await rename()
    assert sorted(refused.value.errors) == SHARDS
    assert all(isinstance(e, ReadOnlyError) for e in refused.value.errors.values())
    assert await db(everyone.where(Spread.name == "renamed")).count() == 0
    assert await db(everyone).update_all(name="renamed") == 8  # outside the scope, every shard writes
