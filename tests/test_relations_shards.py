"""Relations of sharded models: related rows are created on, and loaded from, the parent's shard."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from activerecord import (
    ActiveRecord,
    BigIntegerField,
    ConnectionManager,
    PrimaryKeyField,
    StringField,
    belongs_to,
    has_many,
)

from .backends import BackendDatabases
from .dual import IO

SHARDS = ["relshard_0", "relshard_1"]


class Writer(ActiveRecord):
    __tablename__ = "rs_writers"
    __connection__ = "rel_shards"
    __shard_key__ = "id"

    id: int = PrimaryKeyField(big=True, autoincrement=False)
    name: str = StringField(max_length=50)

    articles = has_many("Article")


class Article(ActiveRecord):
    """Sharded by its writer, so a writer's articles live on the writer's shard."""

    __tablename__ = "rs_articles"
    __connection__ = "rel_shards"
    __shard_key__ = "writer_id"

    id: int = PrimaryKeyField()
    writer_id: int = BigIntegerField()
    title: str = StringField(max_length=50)

    writer = belongs_to(Writer)


@pytest.fixture
async def sharded(db: IO, backend_dbs: BackendDatabases) -> AsyncIterator[None]:
    ConnectionManager.configure({"rel_shards": {"shards": {s: backend_dbs.config(s) for s in SHARDS}}})
    for shard in SHARDS:
        await db.blocking(ActiveRecord.create_all, using=shard, models=[Writer, Article])
    yield
    for shard in SHARDS:
        await db(Article.find().using(shard)).delete_all()
        await db(Writer.find().using(shard)).delete_all()


async def on_shard(db: IO, model: type[ActiveRecord], shard: str) -> int:
    return int(await db(model.find().using(shard)).count())


async def test_related_rows_follow_the_parents_shard(db: IO, sharded: None) -> None:
    even = await db(Writer).create(id=10, name="even")
    odd = await db(Writer).create(id=11, name="odd")
    await db(even.articles).create(title="e1")
    for title in ("o1", "o2"):
        await db(odd.articles).create(title=title)
    assert [await on_shard(db, Article, s) for s in SHARDS] == [1, 2]
    assert [await on_shard(db, Writer, s) for s in SHARDS] == [1, 1]

    loaded = await db(Writer.find_by_id(11).includes("articles")).one()
    assert sorted(a.title for a in loaded.articles) == ["o1", "o2"]
    articles = await db(Article.find().where(writer_id=10).includes("writer")).all()
    assert [a.writer.name for a in articles] == ["even"]

    everyone = await db(Writer.find().includes("articles").order_by("id").on_all_shards()).all()
    assert [(w.name, len(w.articles)) for w in everyone] == [("even", 1), ("odd", 2)]

    again = await db(Writer.find_by_id(10)).one()
    await db(again).load("articles")
    assert [a.title for a in again.articles] == ["e1"]
    assert await db(again.articles.find()).count() == 1
