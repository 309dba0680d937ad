"""Connection pools that hand a released connection to the longest waiter, sync and async.

SQLAlchemy's `QueuePool` keeps idle connections in a queue whose ``put`` wakes a waiter but leaves
the connection in the queue, so the caller that released it can take it straight back before
the waiter runs: under contention (more callers than connections) some callers wait for the
whole run while others go round. asyncio's `Queue` behaves the same way. The queues here hand a
released connection directly to the first waiter (FIFO among waiters), so a caller that comes
back for a connection queues behind those already waiting. Only the queue changes: SQLAlchemy's
pools take their queue class as a class attribute (``_queue_class``), and everything else
(overflow, ``pool_timeout``, ``pool_use_lifo`` for idle connections, dispose, recreate) is
theirs. `fair_pool_class` picks the fair pool where SQLAlchemy would use a queue pool.
"""

from __future__ import annotations

import asyncio
import functools
import threading
import warnings
from collections import deque
from time import monotonic
from typing import Any

from sqlalchemy.engine import URL
from sqlalchemy.pool import AsyncAdaptedQueuePool, ConnectionPoolEntry, Pool, QueuePool
from sqlalchemy.util.concurrency import await_
from sqlalchemy.util.queue import Empty, Full, Queue, QueueCommon

from ..dialects.deadlines import bounded


class _Waiter:
    """One caller blocked in `FairQueue.get`: woken with the item handed to it."""

    __slots__ = ("condition", "item", "served")

    def __init__(self, mutex: threading.RLock) -> None:
        self.condition = threading.Condition(mutex)
        self.item: Any = None
        self.served = False


class FairQueue(Queue[ConnectionPoolEntry]):
    """SQLAlchemy's thread-safe pool queue, with a released item handed to the oldest waiter.

    An item is in the queue only while nobody waits (``put`` gives it to a waiter otherwise), so a
    ``get`` that finds an item is never ahead of a waiter.
    """

    def __init__(self, maxsize: int = 0, use_lifo: bool = False) -> None:
        super().__init__(maxsize, use_lifo)
        self._waiters: deque[_Waiter] = deque()

    def put(self, item: ConnectionPoolEntry, block: bool = True, timeout: float | None = None) -> None:
        with self.mutex:
            if self._waiters:
                waiter = self._waiters.popleft()
                waiter.item, waiter.served = item, True
                waiter.condition.notify()
                return
            super().put(item, block, timeout)

    def get(self, block: bool = True, timeout: float | None = None) -> ConnectionPoolEntry:
        with self.mutex:
            if not self._empty():
                item = self._get()
                self.not_full.notify()
                return item
            if not block:
                raise Empty
            if timeout is not None and timeout < 0:
                raise ValueError("'timeout' must be a positive number")
            waiter = _Waiter(self.mutex)
            self._waiters.append(waiter)
            try:
                self._wait(waiter, None if timeout is None else monotonic() + timeout)
            except BaseException:
                if waiter.served:  # handed over as the wait ended: to the next waiter, or idle
                    self.put(waiter.item, block=False)
                else:
                    self._waiters.remove(waiter)
                raise
            served: ConnectionPoolEntry = waiter.item
            return served

    def _wait(self, waiter: _Waiter, deadline: float | None) -> None:
        while not waiter.served:
            if deadline is None:
                waiter.condition.wait()
                continue
            remaining = deadline - monotonic()
            if remaining <= 0:
                raise Empty
            waiter.condition.wait(remaining)


class FairAsyncQueue(QueueCommon[ConnectionPoolEntry]):
    """The asyncio pool queue with the same hand-off: a released item goes to the oldest waiting
    task. No lock: a pool belongs to one event loop (see `engines`), and each waiter's future is
    made on the loop of the task that waits."""

    def __init__(self, maxsize: int = 0, use_lifo: bool = False) -> None:
        self.maxsize = maxsize
        self.use_lifo = use_lifo
        self._items: deque[ConnectionPoolEntry] = deque()
        self._waiters: deque[asyncio.Future[ConnectionPoolEntry]] = deque()

    def empty(self) -> bool:
        return not self._items

    def full(self) -> bool:
        return 0 < self.maxsize <= len(self._items)

    def qsize(self) -> int:
        return len(self._items)

    def put_nowait(self, item: ConnectionPoolEntry) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():  # (a waiter that timed out or was cancelled is skipped)
                waiter.set_result(item)
                return
        if self.full():
            raise Full
        self._items.append(item)

    def put(self, item: ConnectionPoolEntry, block: bool = True, timeout: float | None = None) -> None:
        # The pool only ever puts without waiting; a full queue is its cue to close the connection.
        self.put_nowait(item)

    def get_nowait(self) -> ConnectionPoolEntry:
        if not self._items:
            raise Empty
        return self._items.pop() if self.use_lifo else self._items.popleft()

    def get(self, block: bool = True, timeout: float | None = None) -> ConnectionPoolEntry:
        if self._items or not block:
            return self.get_nowait()
        waiter: asyncio.Future[ConnectionPoolEntry] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        item: ConnectionPoolEntry = await_(self._wait(waiter, timeout))
        return item

    async def _wait(self, waiter: asyncio.Future[ConnectionPoolEntry], timeout: float | None) -> ConnectionPoolEntry:
        try:
            # (a deadline table entry, not asyncio.timeout: under load nearly every checkout waits)
            return await (waiter if timeout is None else bounded(waiter, timeout, Empty))
        except Empty:
            if waiter.done() and not waiter.cancelled():
                return waiter.result()  # handed over as the time ran out: it is ours
            self._forget(waiter)
            raise Empty from None
        except BaseException:
            # Cancelled: a connection handed over meanwhile goes to the next waiter.
            self._forget(waiter)
            if waiter.done() and not waiter.cancelled():
                self.put_nowait(waiter.result())
            raise

    def _forget(self, waiter: asyncio.Future[ConnectionPoolEntry]) -> None:
        if waiter in self._waiters:
            self._waiters.remove(waiter)
        waiter.cancel()


class FairQueuePool(QueuePool):
    """`QueuePool` whose released connections go to the callers that waited longest."""

    _queue_class = FairQueue


class FairAsyncQueuePool(AsyncAdaptedQueuePool):
    """`AsyncAdaptedQueuePool` whose released connections go to the tasks that waited longest."""

    _queue_class = FairAsyncQueue


_FAIR: dict[type[Pool], type[Pool]] = {QueuePool: FairQueuePool, AsyncAdaptedQueuePool: FairAsyncQueuePool}


def _problem() -> str | None:
    """What no longer matches the SQLAlchemy internals the fair pools rely on, or None."""
    for stock, fair in _FAIR.items():
        if not isinstance(getattr(stock, "_queue_class", None), type):
            return f"{stock.__name__}._queue_class is gone"
        make: Any = fair
        pool = make(lambda: None, pool_size=2, use_lifo=True)
        queue: Any = getattr(pool, "_pool", None)
        expected: Any = make._queue_class
        if not isinstance(queue, expected) or queue.maxsize != 2 or not queue.use_lifo:
            return f"{stock.__name__} no longer keeps its connections in a {expected.__name__}"
    return None


@functools.cache
def fair_pools_usable() -> bool:
    """Whether the fair pools' self-check passed (checked once, warning when it did not)."""
    problem = _problem()
    if problem is None:
        return True
    warnings.warn(
        f"activerecord: the fair connection pools are off ({problem}); using SQLAlchemy's own pools, "
        "which are correct but let a releasing caller take a connection ahead of waiting ones. "
        "Check the pinned SQLAlchemy version.",
        RuntimeWarning,
        stacklevel=2,
    )
    return False


def fair_pool_class(url: URL, is_async: bool) -> type[Pool] | None:
    """The fair pool for ``url``'s engine where SQLAlchemy would make a queue pool, else None
    (SQLite's in-memory pools, for one, stay as they are)."""
    dialect: Any = url.get_dialect(_is_async=is_async)
    stock = dialect.get_pool_class(url)
    fair = _FAIR.get(stock)
    return fair if fair is not None and fair_pools_usable() else None
