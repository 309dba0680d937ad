"""activerecord, async API (the ``a``-prefixed twins), written against the public contract.

``BENCH_AR_METRICS`` turns metrics on as for the sync contender; ``activerecord-async-metrics`` runs
it with metrics on.
"""

from __future__ import annotations

from collections.abc import Sequence

from activerecord import ActiveRecord, ConnectionManager
from bench.contenders.activerecord_sync import instrument_from_env
from bench.contenders.ar_models import Item, Narrow, StreamItem, aware_rows, configure
from bench.contenders.base import AsyncContender, OnBatch
from bench.schema import reset_statements
from bench.targets import Target
from bench.workloads import NarrowRow, Row


class Contender(AsyncContender):
    """Async twin of the sync activerecord contender (same connection scopes)."""

    packages = ("activerecord", "SQLAlchemy", "aiosqlite", "asyncpg", "asyncmy")
    streaming = "async for batch in Model.find().abatches(batch)"
    #: Metrics mode as ``BENCH_AR_METRICS`` takes it; None: that variable decides.
    metrics: str | None = None

    def __init__(self, target: Target) -> None:
        super().__init__(target)
        configure(target)
        instrument_from_env(self.metrics)

    def prepare_rows(self, rows: Sequence[Row]) -> Sequence[Row]:
        return aware_rows(rows)

    async def reset(self) -> None:
        async with ActiveRecord.atransaction():
            for statement in reset_statements(self.target.backend):
                await ActiveRecord.aexecute_raw(statement)

    async def insert_returning(self, rows: Sequence[Row]) -> list[int]:
        async with ActiveRecord.atransaction():
            return [(await Item.acreate(**row._asdict())).id for row in rows]

    async def bulk_insert(self, rows: Sequence[Row]) -> None:
        await Item.abulk_insert([row._asdict() for row in rows])

    async def bulk_insert_narrow(self, rows: Sequence[NarrowRow]) -> None:
        await Narrow.abulk_insert([row._asdict() for row in rows])

    async def insert_many_returning(self, rows: Sequence[NarrowRow]) -> list[int]:
        return [record.id for record in await Narrow.ainsert_many([row._asdict() for row in rows])]

    # W8: each operation by itself, outside any transaction, as a request handler does.

    async def mixed_get(self, pk: int) -> bool:
        return await Item.find_by_id(pk).aone_or_none() is not None

    async def mixed_update(self, pk: int, value: int) -> None:
        await Item.find_by_id(pk).aupdate_all(value=value)

    async def mixed_insert(self, row: Row) -> int:
        return (await Item.acreate(**row._asdict())).id

    async def release(self) -> None:
        await ConnectionManager.adispose()

    async def fetch_objects(self) -> int:
        return len(await Item.find().aall())

    async def fetch_dicts(self) -> int:
        return len(await Item.find().avalues())

    async def get_by_pk(self, ids: Sequence[int]) -> int:
        found = 0
        async with Item.atransaction():
            for pk in ids:
                found += await Item.find_by_id(pk).aone_or_none() is not None
        return found

    async def pages(self, offsets: Sequence[int], page_size: int, threshold: int) -> int:
        seen = 0
        async with Item.atransaction():
            for offset in offsets:
                page = await (
                    Item.find().where(Item.value < threshold).order_by(Item.id).limit(page_size).offset(offset).aall()
                )
                seen += len(page)
        return seen

    async def update_by_pk(self, updates: Sequence[tuple[int, int]]) -> None:
        async with ActiveRecord.atransaction():
            for pk, value in updates:
                await Item.find_by_id(pk).aupdate_all(value=value)

    async def stream(self, batch_size: int, on_batch: OnBatch) -> int:
        count = 0
        async for batch in StreamItem.find().abatches(batch_size):
            on_batch(len(batch))
            count += len(batch)
        return count

    async def close(self) -> None:
        await ConnectionManager.adispose()
