"""SQLAlchemy 2 ORM with AsyncSession."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from bench.contenders.base import AsyncContender, OnBatch
from bench.contenders.sa_schema import Item, Narrow, StreamItem
from bench.schema import reset_statements
from bench.targets import Target
from bench.workloads import W8_POOL, NarrowRow, Row

_DICT_COLUMNS = (Item.id, Item.name, Item.value, Item.score, Item.created_at)


class Contender(AsyncContender):
    """A fresh AsyncSession per workload (see the sync twin)."""

    packages = ("SQLAlchemy", "aiosqlite", "asyncpg", "asyncmy")
    streaming = "AsyncSession.stream_scalars(... yield_per=batch) + partitions()"

    def __init__(self, target: Target) -> None:
        super().__init__(target)
        self.engine = create_async_engine(
            target.sqlalchemy_url(asynchronous=True), pool_size=W8_POOL, max_overflow=0
        )  # W8's pool
        self.sessions: async_sessionmaker[AsyncSession] = async_sessionmaker(self.engine)

    async def reset(self) -> None:
        async with self.sessions() as session, session.begin():
            for statement in reset_statements(self.target.backend):
                await session.execute(text(statement))

    async def insert_returning(self, rows: Sequence[Row]) -> list[int]:
        ids: list[int] = []
        async with self.sessions() as session, session.begin():
            for row in rows:
                item = Item(**row._asdict())
                session.add(item)
                await session.flush()
                ids.append(item.id)
        return ids

    async def bulk_insert(self, rows: Sequence[Row]) -> None:
        async with self.sessions() as session, session.begin():
            await session.execute(insert(Item), [row._asdict() for row in rows])

    async def bulk_insert_narrow(self, rows: Sequence[NarrowRow]) -> None:
        async with self.sessions() as session, session.begin():
            await session.execute(insert(Narrow), [row._asdict() for row in rows])

    async def insert_many_returning(self, rows: Sequence[NarrowRow]) -> list[int]:
        # ORM bulk INSERT with RETURNING (insertmanyvalues), the keys in parameter order.
        stmt = insert(Narrow).returning(Narrow.id, sort_by_parameter_order=True)
        async with self.sessions() as session, session.begin():
            return list(await session.scalars(stmt, [row._asdict() for row in rows]))

    # W8: a session per operation, as per request.

    async def mixed_get(self, pk: int) -> bool:
        async with self.sessions() as session:
            return await session.get(Item, pk) is not None

    async def mixed_update(self, pk: int, value: int) -> None:
        async with self.sessions() as session, session.begin():
            await session.execute(update(Item).where(Item.id == pk).values(value=value))

    async def mixed_insert(self, row: Row) -> int:
        async with self.sessions() as session, session.begin():
            item = Item(**row._asdict())
            session.add(item)
            await session.flush()
            return item.id

    async def release(self) -> None:
        await self.engine.dispose()

    async def fetch_objects(self) -> int:
        async with self.sessions() as session:
            return len((await session.scalars(select(Item))).all())

    async def fetch_dicts(self) -> int:
        async with self.sessions() as session:
            result = await session.execute(select(*_DICT_COLUMNS))
            return len([dict(m) for m in result.mappings()])

    async def get_by_pk(self, ids: Sequence[int]) -> int:
        found = 0
        async with self.sessions() as session:
            for pk in ids:
                found += await session.get(Item, pk) is not None
        return found

    async def pages(self, offsets: Sequence[int], page_size: int, threshold: int) -> int:
        seen = 0
        async with self.sessions() as session:
            for offset in offsets:
                page = await session.scalars(
                    select(Item).where(Item.value < threshold).order_by(Item.id).limit(page_size).offset(offset)
                )
                seen += len(page.all())
        return seen

    async def update_by_pk(self, updates: Sequence[tuple[int, int]]) -> None:
        async with self.sessions() as session, session.begin():
            for pk, value in updates:
                await session.execute(update(Item).where(Item.id == pk).values(value=value))

    async def stream(self, batch_size: int, on_batch: OnBatch) -> int:
        count = 0
        async with self.sessions() as session:
            result = await session.stream_scalars(select(StreamItem).execution_options(yield_per=batch_size))
            async for batch in result.partitions():
                on_batch(len(batch))
                count += len(batch)
        return count

    async def close(self) -> None:
        await self.engine.dispose()
