"""SQLAlchemy Core, sync: the baseline of the sync contenders.

Statements are built anew on every call (``select(t).where(...)`` inside the loop), as user
code does; SQLAlchemy's compiled cache is what makes that affordable, and it is part of
what is measured.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import create_engine, insert, select, text, update

from bench.contenders.base import OnBatch, SyncContender
from bench.contenders.sa_schema import item_table as t
from bench.contenders.sa_schema import narrow_table, new_pk, stream_table
from bench.schema import reset_statements
from bench.targets import Target
from bench.workloads import W8_POOL, NarrowRow, Row


class Contender(SyncContender):
    """Engine + Connection; one connection checkout per workload."""

    packages = ("SQLAlchemy", "psycopg", "PyMySQL")
    streaming = "execution_options(yield_per=batch) + Result.partitions() (server-side cursor)"

    def __init__(self, target: Target) -> None:
        super().__init__(target)
        # W8 shares a pool of W8_POOL connections; the other workloads hold one at a time.
        self.engine = create_engine(target.sqlalchemy_url(asynchronous=False), pool_size=W8_POOL, max_overflow=0)

    def reset(self) -> None:
        with self.engine.begin() as conn:
            for statement in reset_statements(self.target.backend):
                conn.execute(text(statement))

    def insert_returning(self, rows: Sequence[Row]) -> list[int]:
        with self.engine.begin() as conn:
            # The row goes in as parameters, the form SQLAlchemy's tutorial uses to insert
            # data; ``insert(t).values(**row)`` builds four bind parameters and a new cache
            # key per call and measured about 3.5x slower per insert on SQLite.
            return [new_pk(conn.execute(insert(t), row._asdict())) for row in rows]

    def bulk_insert(self, rows: Sequence[Row]) -> None:
        with self.engine.begin() as conn:
            conn.execute(insert(t), [row._asdict() for row in rows])

    def bulk_insert_narrow(self, rows: Sequence[NarrowRow]) -> None:
        with self.engine.begin() as conn:
            conn.execute(insert(narrow_table), [row._asdict() for row in rows])

    def insert_many_returning(self, rows: Sequence[NarrowRow]) -> list[int]:
        with self.engine.begin() as conn:
            if not conn.dialect.insert_executemany_returning:
                return [new_pk(conn.execute(insert(narrow_table), row._asdict())) for row in rows]
            # ``insert().returning(id)`` executemany, as the target is defined: SQLAlchemy then
            # sends many rows per statement, but does not promise the keys in row order
            # (sort_by_parameter_order=True would, at one statement per row on SQLite).
            stmt = insert(narrow_table).returning(narrow_table.c.id)
            return list(conn.execute(stmt, [row._asdict() for row in rows]).scalars())

    def mixed_get(self, pk: int) -> bool:
        with self.engine.connect() as conn:
            return conn.execute(select(t).where(t.c.id == pk)).first() is not None

    def mixed_update(self, pk: int, value: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(t).where(t.c.id == pk).values(value=value))

    def mixed_insert(self, row: Row) -> int:
        with self.engine.begin() as conn:
            return new_pk(conn.execute(insert(t), row._asdict()))

    def release(self) -> None:
        self.engine.dispose()

    def fetch_objects(self) -> int:
        with self.engine.connect() as conn:
            return len(conn.execute(select(t)).all())

    def fetch_dicts(self) -> int:
        with self.engine.connect() as conn:
            return len([dict(m) for m in conn.execute(select(t)).mappings()])

    def get_by_pk(self, ids: Sequence[int]) -> int:
        with self.engine.connect() as conn:
            return sum(conn.execute(select(t).where(t.c.id == pk)).first() is not None for pk in ids)

    def pages(self, offsets: Sequence[int], page_size: int, threshold: int) -> int:
        with self.engine.connect() as conn:
            return sum(
                len(
                    conn.execute(
                        select(t).where(t.c.value < threshold).order_by(t.c.id).limit(page_size).offset(offset)
                    ).all()
                )
                for offset in offsets
            )

    def update_by_pk(self, updates: Sequence[tuple[int, int]]) -> None:
        with self.engine.begin() as conn:
            for pk, value in updates:
                conn.execute(update(t).where(t.c.id == pk).values(value=value))

    def stream(self, batch_size: int, on_batch: OnBatch) -> int:
        count = 0
        with self.engine.connect() as conn:
            result = conn.execution_options(yield_per=batch_size).execute(select(stream_table))
            for batch in result.partitions():
                on_batch(len(batch))
                count += len(batch)
        return count

    def close(self) -> None:
        self.engine.dispose()
