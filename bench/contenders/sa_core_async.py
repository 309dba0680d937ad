"""SQLAlchemy async Core (AsyncEngine): the baseline of the async contenders."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import insert, select, text, update
from sqlalchemy.ext.asyncio import create_async_engine

from bench.contenders.base import AsyncContender, OnBatch
from bench.contenders.sa_schema import item_table as t
from bench.contenders.sa_schema import narrow_table, new_pk, stream_table
from bench.schema import reset_statements
from bench.targets import Target
from bench.workloads import W8_POOL, NarrowRow, Row


class Contender(AsyncContender):
    """AsyncEngine + AsyncConnection; statements built anew on every call."""

    packages = ("SQLAlchemy", "aiosqlite", "asyncpg", "asyncmy")
    streaming = "AsyncConnection.stream() with yield_per=batch + partitions()"

    def __init__(self, target: Target) -> None:
        super().__init__(target)
        # W8 shares a pool of W8_POOL connections; the other workloads hold one at a time.
        self.engine = create_async_engine(target.sqlalchemy_url(asynchronous=True), pool_size=W8_POOL, max_overflow=0)

    async def reset(self) -> None:
        async with self.engine.begin() as conn:
            for statement in reset_statements(self.target.backend):
                await conn.execute(text(statement))

    async def insert_returning(self, rows: Sequence[Row]) -> list[int]:
        async with self.engine.begin() as conn:
            # Row as parameters: see the sync twin for why not ``.values(**row)``.
            return [new_pk(await conn.execute(insert(t), row._asdict())) for row in rows]

    async def bulk_insert(self, rows: Sequence[Row]) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(insert(t), [row._asdict() for row in rows])

    async def bulk_insert_narrow(self, rows: Sequence[NarrowRow]) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(insert(narrow_table), [row._asdict() for row in rows])

    async def insert_many_returning(self, rows: Sequence[NarrowRow]) -> list[int]:
        async with self.engine.begin() as conn:
            if not conn.dialect.insert_executemany_returning:
                return [new_pk(await conn.execute(insert(narrow_table), row._asdict())) for row in rows]
            # ``insert().returning(id)`` executemany, as the target is defined: SQLAlchemy then
            # sends many rows per statement, but does not promise the keys in row order
            # (sort_by_parameter_order=True would, at one statement per row on SQLite).
            stmt = insert(narrow_table).returning(narrow_table.c.id)
            return list((await conn.execute(stmt, [row._asdict() for row in rows])).scalars())

    async def mixed_get(self, pk: int) -> bool:
        async with self.engine.connect() as conn:
            return (await conn.execute(select(t).where(t.c.id == pk))).first() is not None

    async def mixed_update(self, pk: int, value: int) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(update(t).where(t.c.id == pk).values(value=value))

    async def mixed_insert(self, row: Row) -> int:
        async with self.engine.begin() as conn:
            return new_pk(await conn.execute(insert(t), row._asdict()))

    async def release(self) -> None:
        await self.engine.dispose()

    async def fetch_objects(self) -> int:
        async with self.engine.connect() as conn:
            return len((await conn.execute(select(t))).all())

    async def fetch_dicts(self) -> int:
        async with self.engine.connect() as conn:
            return len([dict(m) for m in (await conn.execute(select(t))).mappings()])

    async def get_by_pk(self, ids: Sequence[int]) -> int:
        found = 0
        async with self.engine.connect() as conn:
            for pk in ids:
                found += (await conn.execute(select(t).where(t.c.id == pk))).first() is not None
        return found

    async def pages(self, offsets: Sequence[int], page_size: int, threshold: int) -> int:
        seen = 0
        async with self.engine.connect() as conn:
            for offset in offsets:
                result = await conn.execute(
                    select(t).where(t.c.value < threshold).order_by(t.c.id).limit(page_size).offset(offset)
                )
                seen += len(result.all())
        return seen

    async def update_by_pk(self, updates: Sequence[tuple[int, int]]) -> None:
        async with self.engine.begin() as conn:
            for pk, value in updates:
                await conn.execute(update(t).where(t.c.id == pk).values(value=value))

    async def stream(self, batch_size: int, on_batch: OnBatch) -> int:
        count = 0
        async with self.engine.connect() as conn:
            result = await conn.stream(select(stream_table).execution_options(yield_per=batch_size))
            async for batch in result.partitions():
                on_batch(len(batch))
                count += len(batch)
        return count

    async def close(self) -> None:
        await self.engine.dispose()
