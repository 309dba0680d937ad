"""Shard groups on every backend: key routing, the seed's ShardedUserService, queries over
every shard with correct merging, resolvers, failures, and shards with replicas."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import and_, func, or_

from activerecord import (
    ActiveRecord,
    ConnectionManager,
    IntegerField,
    PrimaryKeyField,
    QueryError,
    ReadOnlyError,
    ShardDirectory,
    ShardQueryError,
    SoftDeleteField,
    StringField,
    ValidationError,
    generate_id,
)
from activerecord.errors import ConfigurationError

from .backends import BackendDatabases
from .dual import IO, off_loop

SHARDS = [f"user_shard_{n}" for n in range(4)]


class ShardedUser(ActiveRecord):
    """Users spread over four shards by id (``id % 4``)."""

    __tablename__ = "users"
    __connection__ = "user_shards"
    __shard_key__ = "id"

    id: int = PrimaryKeyField(big=True, autoincrement=False)
    name: str = StringField(max_length=50)
    score: int | None = IntegerField(nullable=True)


class Tenant(ActiveRecord):
    """Rows placed by a directory that maps each tenant code to its shard."""

    __tablename__ = "tenants"
    __connection__ = "user_shards"
    __shard_key__ = "code"
    __shard_resolver__ = ShardDirectory({"acme": "user_shard_3", "globex": "user_shard_1"})

    id: int = PrimaryKeyField()
    code: str = StringField(max_length=20)


class Note(ActiveRecord):
    """Rows placed by a plain callable on the first letter of their author."""

    __tablename__ = "notes"
    __connection__ = "user_shards"
    __shard_key__ = "author"
    __shard_resolver__ = staticmethod(lambda author: "user_shard_0" if author < "n" else "user_shard_2")

    id: int = PrimaryKeyField()
    author: str = StringField(max_length=20)


class Entry(ActiveRecord):
    """Soft-deleted rows over the shards: every all-shards read leaves them out."""

    __tablename__ = "entries"
    __connection__ = "user_shards"
    __shard_key__ = "id"

    id: int = PrimaryKeyField(autoincrement=False)
    kind: str = StringField(max_length=10)
    amount: int = IntegerField()
    deleted_at: dt.datetime | None = SoftDeleteField()


MODELS = (ShardedUser, Tenant, Note, Entry)


class Shards:
    def __init__(self, backend_dbs: BackendDatabases) -> None:
        self.dbs = backend_dbs
        self.configs = {shard: backend_dbs.config(shard) for shard in SHARDS}

    def configure(self, overrides: dict[str, Any] | None = None) -> None:
        ConnectionManager.configure({"user_shards": {"shards": {**self.configs, **(overrides or {})}}})

    def count_on(self, shard: str) -> int:
        return off_loop(ShardedUser.find().using(shard).count)


@pytest.fixture
async def shards(db: IO, backend_dbs: BackendDatabases) -> AsyncIterator[Shards]:
    group = Shards(backend_dbs)
    group.configure()
    await db.blocking(ActiveRecord.create_all, using="user_shards", models=MODELS)  # on every shard
    yield group
    group.configure()

    def clean() -> None:
        for shard in SHARDS:
            for model in MODELS:
                model.find().using(shard).delete_all()
            Entry.find().with_deleted().using(shard).hard_delete_all()

    await db.blocking(clean)
    # Shard names are global: leave them free for other groups (the demo's, other tests').
    await ConnectionManager.aremove("user_shards")


# -- the seed's sample --------------------------------------------------------------------------


class ShardedUserService:
    """The seed's sharded user service, as written against this library."""

    def __init__(self, io: IO) -> None:
        self.io = io

    def get_shard_for_user(self, user_id: int) -> str:
        shard_number = user_id % 4
        return f"user_shard_{shard_number}"

    async def find_user(self, user_id: int) -> ShardedUser:
        shard = self.get_shard_for_user(user_id)
        return await self.io(ShardedUser.find_by_id(user_id).using(shard)).one()  # type: ignore[no-any-return]

    async def create_user(self, user_data: dict[str, Any]) -> ShardedUser:
        user_id = generate_id()
        shard = self.get_shard_for_user(user_id)
        user = ShardedUser(id=user_id, **user_data)
        await self.io(user).save(using=shard)
        return user


async def test_seed_sharded_user_service(db: IO, shards: Shards) -> None:
    service = ShardedUserService(db)
    created = [await service.create_user({"name": f"user{n}"}) for n in range(12)]
    for user in created:
        found = await service.find_user(user.id)
        assert found.name == user.name
        assert found == user
        assert await db(ShardedUser.find().using(f"user_shard_{user.id % 4}").where(id=user.id)).exists()
    assert sum(shards.count_on(s) for s in SHARDS) == 12


# -- routing by the shard key -------------------------------------------------------------------


async def test_the_shard_key_routes_writes_and_reads(db: IO, shards: Shards) -> None:
    users = [await db(ShardedUser).create(id=n, name=f"u{n}") for n in range(1, 9)]
    for shard_number, shard in enumerate(SHARDS):
        expected = sorted(u.id for u in users if u.id % 4 == shard_number)
        assert sorted(u.id for u in (await db(ShardedUser.find().using(shard)).all())) == expected
    five = await db(ShardedUser.find_by_id(5)).one()
    assert five.name == "u5"
    assert (await db(ShardedUser.find().where(id=6)).one()).name == "u6"
    assert (await db(ShardedUser.find().where(ShardedUser.id == 7, name="u7")).one()).id == 7
    await db(five).update(name="five")
    assert (await db(ShardedUser.find_by_id(5)).one()).name == "five"
    await db(five).reload()
    await db(five).delete()
    assert await db(ShardedUser.find_by_id(5)).one_or_none() is None
    assert await db(ShardedUser.find().where(id=6)).update_all(score=60) == 1
    assert (await db(ShardedUser.find_by_id(6)).one()).score == 60
    assert shards.count_on("user_shard_1") == 1  # 5 is gone, 1 is left


async def test_a_query_without_the_shard_key_is_refused(db: IO, shards: Shards) -> None:
    for query in (
        ShardedUser.find(),
        ShardedUser.find().where(name="a"),
        ShardedUser.find().where(ShardedUser.id > 3),
    ):
        with pytest.raises(QueryError, match="on_all_shards"):
            await db(query).all()
    with pytest.raises(ValidationError, match="id"):
        await db(ShardedUser(name="no id")).save()
    with pytest.raises(QueryError):
        await db(ShardedUser.find()).delete_all()
    assert sum(shards.count_on(s) for s in SHARDS) == 0


async def test_directory_and_callable_resolvers(db: IO, shards: Shards) -> None:
    await db(Tenant).create(code="acme")
    await db(Tenant).create(code="globex")
    assert [t.code for t in (await db(Tenant.find().using("user_shard_3")).all())] == ["acme"]
    assert [t.code for t in (await db(Tenant.find().using("user_shard_1")).all())] == ["globex"]
    assert (await db(Tenant.find().where(code="acme")).one()).code == "acme"
    with pytest.raises(QueryError, match="no entry"):
        await db(Tenant).create(code="initech")
    await db(Note).create(author="ada")
    await db(Note).create(author="zed")
    assert [n.author for n in (await db(Note.find().using("user_shard_0")).all())] == ["ada"]
    assert [n.author for n in (await db(Note.find().using("user_shard_2")).all())] == ["zed"]


# -- every shard --------------------------------------------------------------------------------


async def fill(db: IO) -> list[ShardedUser]:
    rows = [(n, f"name{(n * 7) % 23:02d}", None if n % 5 == 0 else (n * 37) % 101) for n in range(1, 31)]
    return [await db(ShardedUser).create(id=n, name=name, score=score) for n, name, score in rows]


async def test_all_shards_merge_order_limit_and_offset(db: IO, shards: Shards) -> None:
    users = await fill(db)
    everyone = ShardedUser.find().on_all_shards()
    assert sorted(u.id for u in await db(everyone).all()) == list(range(1, 31))
    by_name = sorted(users, key=lambda u: (u.name, u.id))
    got = await db(everyone.order_by("name", "id").limit(7).offset(5)).all()
    assert [u.id for u in got] == [u.id for u in by_name[5:12]]
    got = await db(everyone.order_by(ShardedUser.id.desc()).limit(4)).all()
    assert [u.id for u in got] == [30, 29, 28, 27]
    got = await db(everyone.where(ShardedUser.id > 10).order_by("-name", "id").offset(3)).all()
    expected = sorted((u for u in users if u.id > 10), key=lambda u: (u.name, -u.id), reverse=True)
    assert [u.id for u in got] == [u.id for u in expected[3:]]
    first = await db(everyone.order_by("name", "id")).first()
    assert first is not None and first.id == by_name[0].id
    assert len(await db(everyone.limit(5)).all()) == 5
    # Records loaded from a shard remember it: saving one goes back there.
    record = got[0]
    await db(record).update(name="renamed")
    assert (await db(ShardedUser.find_by_id(record.id)).one()).name == "renamed"


async def test_all_shards_merge_with_nulls_in_the_sort_key(db: IO, shards: Shards, backend: str) -> None:
    users = await fill(db)
    nulls = sorted(u.id for u in users if u.score is None)
    ascending = [u.id for u in sorted((u for u in users if u.score is not None), key=lambda u: (u.score, u.id))]
    descending = [u.id for u in sorted((u for u in users if u.score is not None), key=lambda u: (-u.score, u.id))]
    # Each backend's own NULL placement: PostgreSQL sorts NULL as the largest value, the others
    # as the smallest.
    null_is_large = backend == "postgresql"
    got = await db(ShardedUser.find().on_all_shards().order_by("score", "id")).all()
    assert [u.id for u in got] == ([*ascending, *nulls] if null_is_large else [*nulls, *ascending])
    got = await db(ShardedUser.find().on_all_shards().order_by(ShardedUser.score.desc(), "id").limit(8)).all()
    expected = [*nulls, *descending] if null_is_large else [*descending, *nulls]
    assert [u.id for u in got] == expected[:8]


async def test_all_shards_counts_and_aggregates(db: IO, shards: Shards) -> None:
    users = await fill(db)
    everyone = ShardedUser.find().on_all_shards()
    scores = [u.score for u in users if u.score is not None]
    assert await db(everyone).count() == 30
    assert await db(everyone.where(ShardedUser.id <= 10)).count() == 10
    assert await db(everyone.limit(4).offset(28)).count() == 2
    assert await db(everyone.where(name="nobody")).exists() is False
    assert await db(everyone).exists() is True
    assert await db(everyone).sum("score") == sum(scores)
    assert await db(everyone).min(ShardedUser.score) == min(scores)
    assert await db(everyone).max("score") == max(scores)
    assert Decimal(str(await db(everyone).avg("score"))).quantize(Decimal("0.01")) == (
        Decimal(sum(scores)) / len(scores)
    ).quantize(Decimal("0.01"))
    assert await db(everyone.where(name="nobody")).sum("score") is None
    with pytest.raises(QueryError):
        await db(everyone.limit(3)).sum("score")
    assert await db(everyone.where(ShardedUser.id > 20)).update_all(score=0) == 10
    assert await db(everyone).max("score") == max(u.score or 0 for u in users if u.id <= 20)
    assert await db(everyone.where(ShardedUser.id > 25)).delete_all() == 5
    assert await db(everyone).count() == 25


async def test_a_failing_shard_raises_unless_skipped(db: IO, shards: Shards, backend_dbs: BackendDatabases) -> None:
    await fill(db)
    # A shard whose database lacks the table.
    shards.configure({"user_shard_2": backend_dbs.config("empty_shard")})
    everyone = ShardedUser.find().on_all_shards()
    with pytest.raises(ShardQueryError) as info:
        await db(everyone).all()
    assert list(info.value.errors) == ["user_shard_2"]
    assert info.value.__cause__ is info.value.errors["user_shard_2"]
    partial = await db(ShardedUser.find().on_all_shards(skip_failed=True)).all()
    assert sorted(u.id % 4 for u in partial) == sorted(n % 4 for n in range(1, 31) if n % 4 != 2)
    assert await db(ShardedUser.find().on_all_shards(skip_failed=True)).count() == len(partial)


async def test_all_shard_queries_run_side_by_side(db: IO, shards: Shards) -> None:
    await fill(db)
    if db.is_async:
        # Each on_all_shards() query itself runs its shards concurrently; so can several queries.
        results = await asyncio.gather(*(ShardedUser.find().on_all_shards().acount() for _ in range(5)))
    else:
        with ThreadPoolExecutor(max_workers=5) as pool:
            results = list(pool.map(lambda _: ShardedUser.find().on_all_shards().count(), range(5)))
    assert results == [30] * 5


async def test_on_all_shards_needs_a_shard_group(db: IO, shards: Shards) -> None:
    from .models import Author

    with pytest.raises(QueryError, match="not a shard group"):
        await db(Author.find().on_all_shards()).all()
    with pytest.raises(QueryError, match="own columns"):
        await db(ShardedUser.find().on_all_shards().order_by(ShardedUser.score + 1)).all()


# -- shards with replicas; the migration helper ------------------------------------------------------


async def test_a_shard_may_have_read_replicas(db: IO, shards: Shards, backend_dbs: BackendDatabases) -> None:
    replica = backend_dbs.config("user_shard_0_replica")
    ConnectionManager.configure({"_shard_replica_setup": replica})

    def prepare() -> None:
        ActiveRecord.create_all(using="_shard_replica_setup", models=MODELS)
        ShardedUser.find().using("_shard_replica_setup").where(ShardedUser.id >= 0).delete_all()
        ShardedUser.create(id=4, name="on the replica", using="_shard_replica_setup")

    off_loop(prepare)
    ConnectionManager.remove("_shard_replica_setup")

    shards.configure({"user_shard_0": {"write": shards.configs["user_shard_0"], "read": [replica]}})
    await db(ShardedUser).create(id=4, name="on the primary")
    ConnectionManager.forget_write_positions()
    assert (await db(ShardedUser.find_by_id(4)).one()).name == "on the primary"
    assert (await db(ShardedUser.find_by_id(4).using_read_replica()).one()).name == "on the replica"
    with ConnectionManager.connected_to("user_shard_0"):
        assert (await db(ShardedUser.find_by_id(4)).one()).name == "on the replica"
        with pytest.raises(ReadOnlyError):
            await db(ShardedUser).create(id=8, name="refused")
    names = {u.name for u in await db(ShardedUser.find().on_all_shards().using_read_replica()).all()}
    assert names == {"on the replica"}
    assert [name for name, _ in ConnectionManager.primaries("user_shards")] == SHARDS
    primary_urls = {str(engine.url.database) for _, engine in ConnectionManager.primaries("user_shards")}
    assert str(replica["database"]) not in primary_urls
    ShardedUser.find().using("user_shard_0").using_read_replica().where(id=4)  # builds fine
    ConnectionManager.configure({"_shard_replica_setup": replica})
    off_loop(ShardedUser.find().using("_shard_replica_setup").where(id=4).delete_all)
    ConnectionManager.remove("_shard_replica_setup")


def test_shard_group_settings_are_checked() -> None:
    with pytest.raises(ConfigurationError, match=r"unknown setting\(s\) driver beside 'shards'"):
        ConnectionManager.configure({"g": {"shards": {"a": {"driver": "sqlite"}}, "driver": "sqlite"}})
    with pytest.raises(ConfigurationError, match="'shards' must map"):
        ConnectionManager.configure({"g": {"shards": {}}})
    with pytest.raises(ConfigurationError, match="used twice"):
        ConnectionManager.configure(
            {"g1": {"shards": {"s": {"driver": "sqlite"}}}, "g2": {"shards": {"s": {"driver": "sqlite"}}}}
        )
    ConnectionManager.configure({"g": {"shards": {"g_0": {"driver": "sqlite"}, "g_1": {"driver": "sqlite"}}}})
    try:
        assert ConnectionManager.is_shard_group("g")
        assert ConnectionManager.shards("g") == ["g_0", "g_1"]
        with pytest.raises(ConfigurationError, match="shard group"):
            ConnectionManager.engine("g")
        with pytest.raises(ConfigurationError, match="used twice"):
            ConnectionManager.configure({"g_1": {"driver": "sqlite"}})
    finally:
        ConnectionManager.remove("g")
    assert not ConnectionManager.is_configured("g_0")


# -- grouped reads over every shard ----------------------------------------------------------------


def reference_groups(users: list[ShardedUser], key: Any) -> dict[Any, list[ShardedUser]]:
    """Groups computed in Python over every row: what one database holding them all would say."""
    groups: dict[Any, list[ShardedUser]] = {}
    for user in users:
        groups.setdefault(key(user), []).append(user)
    return groups


def stats(members: list[ShardedUser]) -> dict[str, Any]:
    scores = [u.score for u in members if u.score is not None]
    return {
        "n": len(members),
        "scored": len(scores),
        "total": sum(scores) if scores else None,
        "low": min(scores) if scores else None,
        "high": max(scores) if scores else None,
        "mean": Decimal(sum(scores)) / len(scores) if scores else None,
    }


AGGREGATES = {
    "n": func.count(),
    "scored": func.count(ShardedUser.score),
    "total": func.sum(ShardedUser.score),
    "low": func.min(ShardedUser.score),
    "high": func.max(ShardedUser.score),
    "mean": func.avg(ShardedUser.score),
}


def plain(row: dict[str, Any]) -> dict[str, Any]:
    """A merged row with numbers compared as Decimals (backends differ in int/Decimal/float)."""
    out = dict(row)
    for name in ("total", "low", "high"):
        if out.get(name) is not None:
            out[name] = int(out[name])
    if out.get("mean") is not None:
        out["mean"] = Decimal(str(out["mean"])).quantize(Decimal("0.0001"))
    return out


def expected_row(name: str, members: list[ShardedUser]) -> dict[str, Any]:
    row = {"name": name, **stats(members)}
    if row["mean"] is not None:
        row["mean"] = row["mean"].quantize(Decimal("0.0001"))
    return row


async def test_group_by_merges_groups_across_shards(db: IO, shards: Shards) -> None:
    users = await fill(db)
    groups = reference_groups(users, lambda u: u.name)
    assert any(len({u.id % 4 for u in members}) > 1 for members in groups.values())  # groups span shards
    by_name = ShardedUser.find().group_by(ShardedUser.name).on_all_shards()
    # count() of a grouped query counts the merged groups, not the sum of each shard's groups.
    assert await db(by_name).count() == len(groups)
    got = await db(by_name.order_by("name")).values(ShardedUser.name, **AGGREGATES)
    assert [plain(r) for r in got] == [expected_row(name, groups[name]) for name in sorted(groups)]
    assert await db(by_name.order_by("name")).pluck(ShardedUser.name) == sorted(groups)
    pairs = await db(by_name.order_by("name")).pluck(ShardedUser.name, func.count())
    assert pairs == [(name, len(groups[name])) for name in sorted(groups)]
    # The all-shards query has group_by()/having() too.
    same = ShardedUser.find().on_all_shards().group_by("name").order_by("name")
    assert await db(same).pluck("name") == sorted(groups)


async def test_having_order_and_limit_apply_to_the_merged_groups(db: IO, shards: Shards) -> None:
    users = await fill(db)
    groups = reference_groups(users, lambda u: u.name)
    # Groups of two rows on two shards: each shard alone has one row, so a per-shard HAVING
    # would drop them all.
    pairs = sorted(name for name, members in groups.items() if len(members) >= 2)
    assert pairs and all(len({u.id % 4 for u in groups[name]}) == 2 for name in pairs)
    by_name = ShardedUser.find().on_all_shards().group_by(ShardedUser.name)
    having = by_name.having(func.count() >= 2).order_by("name")
    assert await db(having).pluck("name") == pairs
    assert await db(having).count() == len(pairs)
    assert await db(having).exists() is True
    assert await db(by_name.having(func.count() > 5)).exists() is False
    high = sorted((n for n, m in groups.items() if (stats(m)["total"] or 0) > 60 or n == "name00"))
    either = by_name.having(or_(func.sum(ShardedUser.score) > 60, ShardedUser.name == "name00"))
    assert sorted(await db(either).pluck("name")) == high
    both = by_name.having(and_(func.count() >= 2, func.max(ShardedUser.score) < 50))
    expected = sorted(n for n in pairs if (stats(groups[n])["high"] or 0) < 50 and stats(groups[n])["high"] is not None)
    assert sorted(await db(both).pluck("name")) == expected
    # ORDER BY an aggregate, then LIMIT/OFFSET, on the merged groups.
    ranked = sorted(groups, key=lambda n: (-len(groups[n]), n))
    top = by_name.order_by(func.count().desc(), "name").limit(4).offset(1)
    got = await db(top).values(ShardedUser.name, n=func.count())
    assert got == [{"name": n, "n": len(groups[n])} for n in ranked[1:5]]
    assert await db(top).count() == 4


async def test_ungrouped_aggregates_and_rows_over_every_shard(db: IO, shards: Shards) -> None:
    users = await fill(db)
    everyone = ShardedUser.find().on_all_shards()
    [row] = await db(everyone).values(**AGGREGATES)
    assert plain({"name": "all", **row}) == expected_row("all", users)
    assert await db(everyone.where(ShardedUser.id > 100)).values(n=func.count(), total=func.sum(ShardedUser.score)) == [
        {"n": 0, "total": None}
    ]
    # Without groups or aggregates, values()/pluck() are rows merged in the query's order.
    by_name = sorted(users, key=lambda u: (u.name, u.id))
    got = await db(everyone.order_by("name", "id").limit(5).offset(3)).pluck("id")
    assert got == [u.id for u in by_name[3:8]]
    got_rows = await db(everyone.order_by("-id").limit(3)).values("id", "name")
    assert got_rows == [{"id": n, "name": next(u.name for u in users if u.id == n)} for n in (30, 29, 28)]
    assert sorted(await db(everyone).pluck("id")) == list(range(1, 31))
    assert await db(everyone.order_by("id").limit(1)).values() == [{"id": 1, "name": "name07", "score": 37}]


async def test_what_cannot_be_merged_is_refused(db: IO, shards: Shards) -> None:
    await fill(db)
    everyone = ShardedUser.find().on_all_shards()
    by_name = everyone.group_by(ShardedUser.name)
    name = ShardedUser.name
    refused: list[tuple[Any, str, dict[str, Any], str]] = [
        (by_name, "values", {"n": func.count(ShardedUser.score.distinct())}, "DISTINCT"),
        (everyone, "values", {"n": func.count(ShardedUser.score.distinct())}, "DISTINCT"),
        (by_name, "values", {"r": func.rank().over(order_by=name)}, "window"),
        (by_name, "values", {"x": func.sum(ShardedUser.score) / func.count()}, "count, sum"),
        (by_name, "values", {"s": func.group_concat(ShardedUser.id)}, "count, sum"),
        (by_name, "values", {"score": ShardedUser.score}, "neither a group_by"),
        (by_name.having(func.count().in_([1, 2])), "values", {"name": name}, "HAVING"),
        (by_name.order_by(ShardedUser.score), "values", {"name": name}, "ORDER BY"),
        (everyone, "values", {"name": name, "n": func.count()}, "neither a group_by"),
        (ShardedUser.find().distinct().on_all_shards(), "values", {"name": name}, "distinct"),
    ]
    for query, method, labeled, message in refused:
        with pytest.raises(QueryError, match=message):
            await getattr(db(query), method)(**labeled)
    with pytest.raises(QueryError, match="group_by"):
        await db(by_name).sum("score")
    with pytest.raises(QueryError, match="needs at least one column"):
        await db(everyone).pluck()
    # The next query on the same thread or task works.
    assert await db(by_name).count() == len({u.name for u in await db(everyone).all()})


async def test_all_shard_reads_leave_soft_deleted_rows_out(db: IO, shards: Shards) -> None:
    for n in range(1, 13):
        await db(Entry).create(id=n, kind="a" if n % 3 else "b", amount=n * 10)
    for n in (4, 7, 12):
        await db(await db(Entry.find_by_id(n)).one()).delete()
    live = [n for n in range(1, 13) if n not in (4, 7, 12)]
    entries = Entry.find().on_all_shards()
    assert await db(entries).count() == len(live)
    assert await db(entries).sum("amount") == sum(n * 10 for n in live)
    assert await db(entries).max(Entry.amount) == 110
    mean = Decimal(str(await db(entries).avg("amount"))).quantize(Decimal("0.0001"))
    assert mean == (Decimal(sum(n * 10 for n in live)) / len(live)).quantize(Decimal("0.0001"))
    got = await db(entries.group_by("kind").order_by("kind")).values(Entry.kind, n=func.count())
    assert got == [{"kind": kind, "n": sum(1 for n in live if (n % 3 != 0) == (kind == "a"))} for kind in ("a", "b")]
    assert sorted(await db(entries).pluck("id")) == live
