"""Writes that span a shard group, on every backend and in both modes: ``insert_many`` split by
shard key (one executemany per shard, one transaction per shard), and ``create_all``/``drop_all``
on every shard's primary."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from activerecord import (
    ActiveRecord,
    ConnectionManager,
    PrimaryKeyField,
    QueryError,
    ShardQueryError,
    ShardWriteError,
    StringField,
    ValidationError,
)
from activerecord.engine.config import parse_node
from activerecord.engine.engines import NodeEngines

from .backends import BackendDatabases
from .dual import IO, off_loop
from .test_shards import MODELS, SHARDS, Note, ShardedUser, Shards, Tenant

GROUP = "user_shards"


class Ledger(ActiveRecord):
    """A sharded model whose table no fixture creates: ``create_all`` on the group makes it."""

    __tablename__ = "ledger"
    __connection__ = GROUP
    __shard_key__ = "account"

    id: int = PrimaryKeyField()
    account: str = StringField(max_length=20)
    entry: str = StringField(max_length=20)


class Counted(ActiveRecord):
    """Sharded by an auto-increment key: a row must still bring its key, or it has no shard."""

    __tablename__ = "counted"
    __connection__ = GROUP
    __shard_key__ = "id"

    id: int = PrimaryKeyField()
    label: str = StringField(max_length=20)


@pytest.fixture
async def group(db: IO, backend_dbs: BackendDatabases) -> AsyncIterator[Shards]:
    """The four-shard group of tests/test_shards.py, with the tables of its models on each shard."""
    shards = Shards(backend_dbs)
    shards.configure()
    await db.blocking(ActiveRecord.create_all, using=GROUP, models=MODELS)
    yield shards
    shards.configure()

    def clean() -> None:
        for shard in SHARDS:
            for model in MODELS:
                model.find().using(shard).delete_all()
        ActiveRecord.drop_all(using=GROUP, models=[Ledger, Counted])

    await db.blocking(clean)
    await ConnectionManager.aremove(GROUP)


@contextmanager
def inserts_per_shard() -> Iterator[dict[str, int]]:
    """Counts the INSERT statements each shard's primary receives (sync and async engines)."""
    counts = {shard: 0 for shard in SHARDS}
    listeners: list[tuple[Any, Any]] = []
    for shard in SHARDS:
        # One cursor call per statement run (an executemany is one call, however the driver
        # then batches its rows).
        def count(conn: Any, cursor: Any, statement: str, *args: Any, _shard: str = shard) -> None:
            if statement.lstrip().upper().startswith("INSERT"):
                counts[_shard] += 1

        for engine in (ConnectionManager.engine(shard), ConnectionManager.async_engine(shard).sync_engine):
            event.listen(engine, "before_cursor_execute", count)
            listeners.append((engine, count))
    try:
        yield counts
    finally:
        for engine, fn in listeners:
            event.remove(engine, "before_cursor_execute", fn)


def on_shard(shard: str) -> set[int]:
    return {u.id for u in off_loop(ShardedUser.find().using(shard).all)}


# -- insert_many splits by shard ----------------------------------------------------------------


async def test_insert_many_splits_rows_by_shard_key(db: IO, group: Shards) -> None:
    ids = [7, 1, 12, 6, 3, 9, 2, 0, 5, 30]
    with inserts_per_shard() as counts:
        records = await db(ShardedUser).insert_many([{"id": n, "name": f"u{n}"} for n in ids])
    assert [r.id for r in records] == ids  # input order, with their keys
    assert all(r.is_persisted and not r.changed_fields() for r in records)
    assert counts == {shard: 1 for shard in SHARDS}  # one executemany per shard
    for number, shard in enumerate(SHARDS):
        assert on_shard(shard) == {n for n in ids if n % 4 == number}
    everyone = await db(ShardedUser.find().on_all_shards().order_by(ShardedUser.id)).all()
    assert [u.id for u in everyone] == sorted(ids)


async def test_bulk_insert_splits_rows_by_shard_key(db: IO, group: Shards) -> None:
    ids = [7, 1, 12, 6, 3, 9, 2, 0, 5, 30]
    with inserts_per_shard() as counts:
        assert await db(ShardedUser).bulk_insert([{"id": n, "name": f"u{n}"} for n in ids]) == len(ids)
    assert counts == {shard: 1 for shard in SHARDS}
    for number, shard in enumerate(SHARDS):
        assert on_shard(shard) == {n for n in ids if n % 4 == number}
    with pytest.raises(ValidationError) as bad:
        await db(ShardedUser).bulk_insert([{"id": 40, "name": "ok"}, {"name": "no key"}])
    assert list(bad.value.errors) == ["rows[1].id"]
    assert not on_shard(SHARDS[0]) & {40}


async def test_insert_many_with_resolvers_and_generated_keys(db: IO, group: Shards) -> None:
    tenants = await db(Tenant).insert_many([{"code": "acme"}, {"code": "globex"}, Tenant(code="acme")])
    assert [t.code for t in tenants] == ["acme", "globex", "acme"]
    assert {t.code for t in (await db(Tenant.find().using("user_shard_3")).all())} == {"acme"}
    assert (await db(Tenant.find().using("user_shard_3")).count()) == 2
    assert {t.code for t in (await db(Tenant.find().using("user_shard_1")).all())} == {"globex"}
    assert all(t.id is not None for t in tenants)  # keys come back from every shard
    assert await db(Tenant.find_by_id(tenants[1].id).using("user_shard_1")).one() == tenants[1]

    notes = await db(Note).insert_many([{"author": "zoe"}, {"author": "ada"}])
    assert [n.author for n in notes] == ["zoe", "ada"]
    assert [n.author for n in (await db(Note.find().using("user_shard_2")).all())] == ["zoe"]
    assert [n.author for n in (await db(Note.find().using("user_shard_0")).all())] == ["ada"]
    assert await db(ShardedUser).insert_many([]) == []


async def test_insert_many_validates_every_row_before_any_sql(db: IO, group: Shards) -> None:
    with inserts_per_shard() as counts:
        with pytest.raises(ValidationError) as bad:
            await db(ShardedUser).insert_many([{"id": 1, "name": "ok"}, {"name": "no key"}, {"id": 3, "name": None}])
        assert set(bad.value.errors) == {"rows[1].id", "rows[2].name"}
        assert "rows[1].id" in str(bad.value)

        with pytest.raises(ValidationError) as keyless:
            await db(Counted).insert_many([{"label": "a"}, {"label": "b"}])
        assert list(keyless.value.errors) == ["rows[0].id", "rows[1].id"]
        assert "the shard key is missing" in keyless.value.errors["rows[1].id"][0]

        with pytest.raises(ValidationError) as unknown:
            await db(Tenant).insert_many([{"code": "acme"}, {"code": "initech"}])
        assert list(unknown.value.errors) == ["rows[1].code"]
        assert "initech" in unknown.value.errors["rows[1].code"][0]
    assert counts == {shard: 0 for shard in SHARDS}
    assert sum(group.count_on(s) for s in SHARDS) == 0


async def test_insert_many_pinned_to_one_shard(db: IO, group: Shards) -> None:
    records = await db(ShardedUser).insert_many([{"id": 2, "name": "a"}, {"id": 6, "name": "b"}], using="user_shard_2")
    assert [r.id for r in records] == [2, 6]
    assert on_shard("user_shard_2") == {2, 6}

    with inserts_per_shard() as counts:
        with pytest.raises(QueryError, match=r"rows\[1\] \(id=5\) belongs on user_shard_1") as wrong:
            await db(ShardedUser).insert_many([{"id": 10, "name": "c"}, {"id": 5, "name": "d"}], using="user_shard_2")
        assert "user_shard_2" in str(wrong.value)
    assert counts == {shard: 0 for shard in SHARDS}
    assert on_shard("user_shard_2") == {2, 6}

    # using= the group itself is the same as leaving it out.
    await db(ShardedUser).insert_many([{"id": 11, "name": "e"}], using=GROUP)
    assert on_shard("user_shard_3") == {11}


async def test_a_failing_shard_leaves_the_other_shards_committed(db: IO, group: Shards) -> None:
    await db(ShardedUser).create(id=5, name="already here")  # on user_shard_1
    rows = [{"id": n, "name": f"u{n}"} for n in (4, 1, 5, 2, 8, 3)]
    records = [ShardedUser(**row) for row in rows]
    with pytest.raises(ShardWriteError) as failed:
        await db(ShardedUser).insert_many(records)
    error = failed.value
    assert isinstance(error, ShardQueryError)
    assert list(error.errors) == ["user_shard_1"]
    assert error.committed == ["user_shard_0", "user_shard_2", "user_shard_3"]
    assert error.saved == [0, 3, 4, 5]
    assert "committed on: user_shard_0, user_shard_2, user_shard_3" in str(error)
    # user_shard_1's batch was one transaction: the new row 1 was rolled back with the duplicate 5.
    assert on_shard("user_shard_1") == {5}
    assert on_shard("user_shard_0") == {4, 8}
    assert on_shard("user_shard_2") == {2}
    assert on_shard("user_shard_3") == {3}
    assert [r.is_persisted for r in records] == [True, False, False, True, True, True]

    # The caller retries what was not written, once the conflict is resolved.
    retry = [r for r in records if not r.is_persisted and r.id != 5]
    await db(ShardedUser).insert_many(retry)
    assert on_shard("user_shard_1") == {1, 5}


async def test_insert_many_inside_a_shard_transaction(db: IO, group: Shards) -> None:
    with pytest.raises(RuntimeError):
        async with db.transaction(ShardedUser, using="user_shard_0"):
            await db(ShardedUser).insert_many([{"id": 4, "name": "a"}, {"id": 8, "name": "b"}], using="user_shard_0")
            raise RuntimeError("roll back")
    assert on_shard("user_shard_0") == set()


# -- create_all / drop_all on a shard group -----------------------------------------------------


def tables_of(backend_dbs: BackendDatabases, name: str) -> set[str]:
    """The tables in the database standing for ``name``, looked at directly (not through routing)."""
    node = NodeEngines(parse_node(name, backend_dbs.config(name)))
    try:
        return set(sa.inspect(node.sync).get_table_names())
    finally:
        node.dispose()


async def test_create_all_and_drop_all_on_every_shard_primary(
    db: IO, group: Shards, backend_dbs: BackendDatabases
) -> None:
    replica = "user_shard_2_spare_replica"
    group.configure({"user_shard_2": {"write": group.configs["user_shard_2"], "read": [backend_dbs.config(replica)]}})
    try:
        await db(Ledger).create_all(using=GROUP, models=[Ledger])
        for shard in SHARDS:
            assert "ledger" in tables_of(backend_dbs, shard)
        assert "ledger" not in tables_of(backend_dbs, replica)  # replicas are never changed

        entries = await db(Ledger).insert_many([{"account": "a1", "entry": "x"}, {"account": "b7", "entry": "y"}])
        assert len(await db(Ledger.find().on_all_shards()).all()) == len(entries) == 2
        await db(Ledger).create_all()  # on the model's own group; already there, so nothing to do
        assert await db(Ledger.find().on_all_shards()).count() == 2

        await db(Ledger).drop_all()
        for shard in SHARDS:
            assert "ledger" not in tables_of(backend_dbs, shard)
            assert "users" in tables_of(backend_dbs, shard)  # only the chosen model's table
    finally:
        group.configure()


async def test_create_all_on_the_group_without_models(db: IO, group: Shards, backend_dbs: BackendDatabases) -> None:
    await db(ActiveRecord).create_all(using=GROUP)  # every model declared on the group
    for shard in SHARDS:
        assert {"users", "tenants", "notes", "ledger"} <= tables_of(backend_dbs, shard)
    await db(ActiveRecord).drop_all(using=GROUP, models=[Ledger])
    for shard in SHARDS:
        assert "ledger" not in tables_of(backend_dbs, shard)
    assert {m.__tablename__ for m in MODELS} <= tables_of(backend_dbs, SHARDS[0])
    await db(ActiveRecord).drop_all(using=GROUP, models=[Counted])
