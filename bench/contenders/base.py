"""The interface every contender implements, once as sync and once as async.

Each method is one workload, written the way a user of that library writes it; the harness
(``bench.child``) times the call and checks the returned counts, so a contender that silently
does less work fails instead of winning.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import ClassVar

from bench.targets import Target
from bench.workloads import NarrowRow, Row

#: Called by ``stream`` with the size of each batch, while the batch is alive.
OnBatch = Callable[[int], None]


class _Described:
    """What the report says about a contender besides its numbers."""

    #: Distributions whose versions the report lists next to the contender.
    packages: ClassVar[tuple[str, ...]] = ()
    #: One line on how the contender streams W7 (each library has its own mechanism).
    streaming: ClassVar[str] = ""

    def __init__(self, target: Target) -> None:
        self.target = target

    def prepare_rows(self, rows: Sequence[Row]) -> Sequence[Row]:
        """Turn the shared input rows into what this library's users would hold (untimed).

        The default keeps them; a library that only accepts aware datetimes converts here,
        because its users' data would already be aware.
        """
        return rows


class SyncContender(_Described, ABC):
    """A synchronous library under test."""

    @abstractmethod
    def reset(self) -> None:
        """Empty bench_item and restart ids at 1 (untimed)."""

    @abstractmethod
    def insert_returning(self, rows: Sequence[Row]) -> list[int]:
        """W1: insert rows one by one in one transaction; return the new primary keys."""

    @abstractmethod
    def bulk_insert(self, rows: Sequence[Row]) -> None:
        """W2: insert all rows with the library's bulk API, committed."""

    @abstractmethod
    def fetch_objects(self) -> int:
        """W3o: load the whole table as model instances (or driver rows); return the count."""

    @abstractmethod
    def fetch_dicts(self) -> int:
        """W3d: load the whole table as plain dicts; return the count."""

    @abstractmethod
    def get_by_pk(self, ids: Sequence[int]) -> int:
        """W4: one lookup per id; return how many rows were found."""

    @abstractmethod
    def pages(self, offsets: Sequence[int], page_size: int, threshold: int) -> int:
        """W5: ``value < threshold ORDER BY id LIMIT page_size OFFSET o`` per offset; rows seen."""

    @abstractmethod
    def update_by_pk(self, updates: Sequence[tuple[int, int]]) -> None:
        """W6: set ``value`` for each (id, value) in one transaction."""

    @abstractmethod
    def stream(self, batch_size: int, on_batch: OnBatch) -> int:
        """W7: iterate bench_stream in batches without holding it all; return the row count.

        ``on_batch(len(batch))`` is called as each batch arrives, while it is alive: the
        harness uses it to bound the (slow) memory-tracing pass to the first batches.
        """

    # W2n, W2r and W8 are optional: a contender that leaves these as they are skips them.

    def bulk_insert_narrow(self, rows: Sequence[NarrowRow]) -> None:
        """W2n: ``bulk_insert`` into bench_narrow (two short string columns), committed."""
        raise NotImplementedError

    def insert_many_returning(self, rows: Sequence[NarrowRow]) -> list[int]:
        """W2r: insert all rows into bench_narrow in one bulk call; the new keys in row order."""
        raise NotImplementedError

    def mixed_get(self, pk: int) -> bool:
        """W8: one PK get outside a transaction (from one of W8_THREADS threads, pool of W8_POOL)."""
        raise NotImplementedError

    def mixed_update(self, pk: int, value: int) -> None:
        """W8: one single-row update, committed."""
        raise NotImplementedError

    def mixed_insert(self, row: Row) -> int:
        """W8: one insert, committed; the new key."""
        raise NotImplementedError

    def release(self) -> None:
        """After W8 (untimed): close the pool's idle connections. The contenders of a backend
        run side by side, and ten pools of ten idle connections would exhaust a server's limit."""

    def close(self) -> None:
        """Release connections (untimed)."""


class AsyncContender(_Described, ABC):
    """An asyncio library under test; same workloads as :class:`SyncContender`."""

    async def open(self) -> None:
        """Connect or initialise (untimed); most libraries connect lazily."""

    @abstractmethod
    async def reset(self) -> None:
        """Empty bench_item and restart ids at 1 (untimed)."""

    @abstractmethod
    async def insert_returning(self, rows: Sequence[Row]) -> list[int]:
        """W1."""

    @abstractmethod
    async def bulk_insert(self, rows: Sequence[Row]) -> None:
        """W2."""

    @abstractmethod
    async def fetch_objects(self) -> int:
        """W3o."""

    @abstractmethod
    async def fetch_dicts(self) -> int:
        """W3d."""

    @abstractmethod
    async def get_by_pk(self, ids: Sequence[int]) -> int:
        """W4."""

    @abstractmethod
    async def pages(self, offsets: Sequence[int], page_size: int, threshold: int) -> int:
        """W5."""

    @abstractmethod
    async def update_by_pk(self, updates: Sequence[tuple[int, int]]) -> None:
        """W6."""

    @abstractmethod
    async def stream(self, batch_size: int, on_batch: OnBatch) -> int:
        """W7."""

    async def bulk_insert_narrow(self, rows: Sequence[NarrowRow]) -> None:
        """W2n (optional)."""
        raise NotImplementedError

    async def insert_many_returning(self, rows: Sequence[NarrowRow]) -> list[int]:
        """W2r (optional)."""
        raise NotImplementedError

    async def mixed_get(self, pk: int) -> bool:
        """W8 (optional): from one of W8_TASKS tasks over a pool of W8_POOL."""
        raise NotImplementedError

    async def mixed_update(self, pk: int, value: int) -> None:
        """W8 (optional)."""
        raise NotImplementedError

    async def mixed_insert(self, row: Row) -> int:
        """W8 (optional)."""
        raise NotImplementedError

    async def release(self) -> None:
        """After W8 (untimed): close the pool's idle connections. The contenders of a backend
        run side by side, and ten pools of ten idle connections would exhaust a server's limit."""

    async def close(self) -> None:
        """Release connections (untimed)."""
