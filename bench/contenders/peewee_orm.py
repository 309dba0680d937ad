"""Peewee (sync), with its own models declared against the runner's tables."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from peewee import (
    AutoField,
    CharField,
    Database,
    DatabaseProxy,
    DateTimeField,
    DoesNotExist,
    FloatField,
    IntegerField,
    Model,
    chunked,
)
from playhouse.pool import PooledMySQLDatabase, PooledSqliteDatabase

from bench.contenders.base import OnBatch, SyncContender
from bench.schema import reset_statements
from bench.targets import Target
from bench.workloads import NARROW_TABLE, STREAM_TABLE, TABLE, W8_POOL, NarrowRow, Row

_db = DatabaseProxy()
# Peewee's documented batch size for insert_many: SQLite caps bound variables per statement.
_INSERT_CHUNK = 1_000


class _Base(Model):
    id = AutoField()
    name = CharField(max_length=100)
    value = IntegerField()
    score = FloatField()
    created_at = DateTimeField()

    class Meta:
        database = _db


class Item(_Base):
    """bench_item."""

    class Meta:
        table_name = TABLE


class Narrow(Model):
    """bench_narrow."""

    id = AutoField()
    a = CharField(max_length=20)
    b = CharField(max_length=20)

    class Meta:
        database = _db
        table_name = NARROW_TABLE


class StreamItem(_Base):
    """bench_stream."""

    class Meta:
        table_name = STREAM_TABLE


def _count_batches(records: Iterable[Model], size: int, on_batch: OnBatch) -> int:
    # Peewee iterates record by record; group them as the other contenders' batches are.
    count = 0
    for batch in chunked(records, size):
        on_batch(len(batch))
        count += len(batch)
    return count


# Peewee's pool (playhouse.pool), waiting for a free connection as the SQLAlchemy pools do. The
# contender's own connection, held by the main thread through W8, is the one extra.
_POOL = {"max_connections": W8_POOL + 1, "timeout": 60}


def _database(target: Target) -> Database:
    if target.backend == "sqlite":
        # A pooled connection moves between threads (Peewee's documented setting for its pool).
        return PooledSqliteDatabase(target.database, check_same_thread=False, **_POOL)
    if target.backend == "postgresql":
        # The Ext database is what provides ServerSide() streaming; psycopg 3 is picked
        # automatically when psycopg2 is absent.
        from playhouse.postgres_ext import PooledPostgresqlExtDatabase

        pg: Database = PooledPostgresqlExtDatabase(
            target.database,
            **_POOL,
            host=target.host,
            port=target.port,
            user=target.user,
            password=target.password or None,
        )
        return pg
    return PooledMySQLDatabase(
        target.database,
        **_POOL,
        host=target.host,
        port=target.port,
        user=target.user,
        password=target.password,
        charset="utf8mb4",
    )


class Contender(SyncContender):
    """One Peewee connection for the main thread's workloads, from Peewee's pool; W8's threads
    take theirs from the same pool per operation (``connection_context()``), as a web request does."""

    packages = ("peewee", "psycopg", "PyMySQL")
    streaming = (
        "ServerSide(query) in atomic() on PostgreSQL; elsewhere query.iterator() "
        "(PyMySQL buffers the whole result client-side: Peewee has no SSCursor option)"
    )

    def __init__(self, target: Target) -> None:
        super().__init__(target)
        self.db = _database(target)
        _db.initialize(self.db)
        self.db.connect()

    def reset(self) -> None:
        with self.db.atomic():
            for statement in reset_statements(self.target.backend):
                self.db.execute_sql(statement)  # type: ignore[no-untyped-call]

    def insert_returning(self, rows: Sequence[Row]) -> list[int]:
        with self.db.atomic():
            return [Item.create(**row._asdict()).id for row in rows]

    def bulk_insert(self, rows: Sequence[Row]) -> None:
        with self.db.atomic():
            for batch in chunked([row._asdict() for row in rows], _INSERT_CHUNK):
                Item.insert_many(batch).execute()

    def bulk_insert_narrow(self, rows: Sequence[NarrowRow]) -> None:
        with self.db.atomic():
            for batch in chunked([row._asdict() for row in rows], _INSERT_CHUNK):
                Narrow.insert_many(batch).execute()

    # W8: Peewee runs a statement outside atomic() in autocommit, one round trip.

    def mixed_get(self, pk: int) -> bool:
        with self.db.connection_context():
            return Item.get_or_none(Item.id == pk) is not None

    def mixed_update(self, pk: int, value: int) -> None:
        with self.db.connection_context():
            Item.update(value=value).where(Item.id == pk).execute()

    def mixed_insert(self, row: Row) -> int:
        with self.db.connection_context():
            return int(Item.create(**row._asdict()).id)

    def release(self) -> None:
        self.db.close_idle()

    def fetch_objects(self) -> int:
        return len(list(Item.select()))

    def fetch_dicts(self) -> int:
        return len(list(Item.select().dicts()))

    def get_by_pk(self, ids: Sequence[int]) -> int:
        found = 0
        for pk in ids:
            try:
                Item.get_by_id(pk)
            except DoesNotExist:
                continue
            found += 1
        return found

    def pages(self, offsets: Sequence[int], page_size: int, threshold: int) -> int:
        seen = 0
        for offset in offsets:
            query = Item.select().where(Item.value < threshold).order_by(Item.id).limit(page_size).offset(offset)
            seen += len(list(query))
        return seen

    def update_by_pk(self, updates: Sequence[tuple[int, int]]) -> None:
        with self.db.atomic():
            for pk, value in updates:
                Item.update(value=value).where(Item.id == pk).execute()

    def stream(self, batch_size: int, on_batch: OnBatch) -> int:
        if self.target.backend == "postgresql":
            from playhouse.postgres_ext import ServerSide

            with self.db.atomic():
                rows = ServerSide(StreamItem.select(), array_size=batch_size)
                return _count_batches(rows, batch_size, on_batch)
        return _count_batches(StreamItem.select().iterator(), batch_size, on_batch)

    def close(self) -> None:
        self.db.close()
