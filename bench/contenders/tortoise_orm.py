"""Tortoise ORM (async), with models declared against the runner's tables."""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import quote

from tortoise import Tortoise, connections, fields
from tortoise.models import Model
from tortoise.transactions import in_transaction

from bench.contenders.base import AsyncContender, OnBatch
from bench.schema import reset_statements
from bench.targets import Target
from bench.workloads import NARROW_TABLE, STREAM_TABLE, TABLE, W8_POOL, NarrowRow, Row

# bulk_create's batch: the same chunk Peewee uses, well under SQLite's bound-variable cap.
_INSERT_CHUNK = 1_000


class _Columns(Model):
    """The columns both benchmark tables share."""

    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=100)
    value = fields.IntField()
    score = fields.FloatField()
    created_at = fields.DatetimeField()

    class Meta:
        abstract = True


class Item(_Columns):
    """bench_item."""

    class Meta:
        table = TABLE


class StreamItem(_Columns):
    """bench_stream."""

    class Meta:
        table = STREAM_TABLE


class Narrow(Model):
    """bench_narrow."""

    id = fields.IntField(primary_key=True)
    a = fields.CharField(max_length=20)
    b = fields.CharField(max_length=20)

    class Meta:
        table = NARROW_TABLE


def _db_url(target: Target) -> str:
    if target.backend == "sqlite":
        # Tortoise switches SQLite files to WAL by default; every other contender runs with
        # SQLite's default rollback journal, so keep that for a like-for-like comparison.
        return f"sqlite://{target.database}?journal_mode=DELETE"
    scheme = "asyncpg" if target.backend == "postgresql" else "mysql"
    auth = quote(target.user) + (f":{quote(target.password)}" if target.password else "")
    # A pool of W8_POOL connections, as every contender has for W8 (SQLite: one connection).
    return f"{scheme}://{auth}@{target.host}:{target.port}/{target.database}?minsize=1&maxsize={W8_POOL}"


class Contender(AsyncContender):
    """Tortoise with a pool of W8_POOL connections; naive datetimes (``use_tz=False``)."""

    packages = ("tortoise-orm", "aiosqlite", "asyncpg", "asyncmy")
    streaming = "keyset pagination (id > last ORDER BY id LIMIT batch): Tortoise has no cursor API"

    async def open(self) -> None:
        # use_tz=False: the columns are naive TIMESTAMP/DATETIME, as for every contender.
        await Tortoise.init(db_url=_db_url(self.target), modules={"models": [__name__]}, use_tz=False)

    async def reset(self) -> None:
        # The statement must go through the transaction's connection: on SQLite the
        # pooled client shares one lock with the transaction and would wait forever.
        async with in_transaction() as conn:
            for statement in reset_statements(self.target.backend):
                await conn.execute_query(statement)

    async def insert_returning(self, rows: Sequence[Row]) -> list[int]:
        async with in_transaction():
            return [(await Item.create(**row._asdict())).id for row in rows]

    async def bulk_insert(self, rows: Sequence[Row]) -> None:
        async with in_transaction():
            await Item.bulk_create([Item(**row._asdict()) for row in rows], batch_size=_INSERT_CHUNK)

    async def bulk_insert_narrow(self, rows: Sequence[NarrowRow]) -> None:
        async with in_transaction():
            await Narrow.bulk_create([Narrow(**row._asdict()) for row in rows], batch_size=_INSERT_CHUNK)

    # W8: Tortoise runs a statement outside in_transaction() in autocommit.

    async def mixed_get(self, pk: int) -> bool:
        return await Item.get_or_none(id=pk) is not None

    async def mixed_update(self, pk: int, value: int) -> None:
        await Item.filter(id=pk).update(value=value)

    async def mixed_insert(self, row: Row) -> int:
        return (await Item.create(**row._asdict())).id

    async def release(self) -> None:
        await connections.close_all(discard=False)  # the clients reconnect on next use

    async def fetch_objects(self) -> int:
        return len(await Item.all())

    async def fetch_dicts(self) -> int:
        return len(await Item.all().values())

    async def get_by_pk(self, ids: Sequence[int]) -> int:
        found = 0
        for pk in ids:
            found += await Item.get_or_none(id=pk) is not None
        return found

    async def pages(self, offsets: Sequence[int], page_size: int, threshold: int) -> int:
        seen = 0
        for offset in offsets:
            page = await Item.filter(value__lt=threshold).order_by("id").limit(page_size).offset(offset)
            seen += len(page)
        return seen

    async def update_by_pk(self, updates: Sequence[tuple[int, int]]) -> None:
        async with in_transaction():
            for pk, value in updates:
                await Item.filter(id=pk).update(value=value)

    async def stream(self, batch_size: int, on_batch: OnBatch) -> int:
        count = 0
        last_id = 0
        while batch := await StreamItem.filter(id__gt=last_id).order_by("id").limit(batch_size):
            on_batch(len(batch))
            count += len(batch)
            last_id = batch[-1].id
        return count

    async def close(self) -> None:
        await Tortoise.close_connections()
