"""Sync calls over several shards, run concurrently on one bounded thread pool.

Async fan-out gathers coroutines; sync fan-out (``on_all_shards()``, sharded bulk inserts,
``create_all`` on a shard group) runs each shard's call on a worker thread, so a query over N
shards costs about the slowest shard instead of the sum of them.

- One pool for the process, made on first use, of at most `MAX_WORKERS` threads; a fan-out
  over N shards occupies at most ``min(N, MAX_WORKERS)`` of them at a time.
- Each call runs in a copy of the caller's `contextvars.Context`, so ``using``/routing scopes
  and read-your-own-writes hold on the worker; the write positions a call records are merged
  back into the caller's context afterwards.
- The event-loop guard (`bridged`) is checked once, in the calling thread, before anything
  is submitted: worker threads have no loop and would not refuse.
- The calls run one after another in the calling thread when there is only one, when the
  caller is inside the greenlet bridge (the async engines' connections belong to its
  greenlets), when a transaction on one of the shards is open (its connection stays on the
  thread that opened it), and on a pool thread (a nested fan-out must not wait for the pool
  it occupies).
"""

from __future__ import annotations

import contextvars
import functools
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from ..connections import transaction as _transaction
from ..engine.greenlets import bridged
from ..multidb import positions as _positions

T = TypeVar("T")

#: Most threads the shared fan-out pool runs at once (and so the most shards queried at once).
MAX_WORKERS = 32

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()
_on_worker = threading.local()


def _executor() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        with _pool_lock:
            if _pool is None:
                _pool = ThreadPoolExecutor(
                    max_workers=MAX_WORKERS, thread_name_prefix="activerecord-fanout", initializer=_mark_worker
                )
    return _pool


def _mark_worker() -> None:
    _on_worker.active = True


def _outcome(call: Callable[[], T]) -> T | Exception:
    try:
        return call()
    except Exception as exc:  # every shard's failure is reported by the caller, together
        return exc


def each(shards: Sequence[str], call: Callable[[str], T]) -> list[T | Exception]:
    """``call(shard)`` for every shard, concurrently; the outcomes in shard order.

    A call that raised an `Exception` has it in its place; anything else (KeyboardInterrupt,
    SystemExit) propagates. Raises `SyncInAsyncError` before any call on a thread whose event
    loop is running.
    """
    inline = bridged() or len(shards) <= 1 or getattr(_on_worker, "active", False)
    if inline or any(_transaction.current(s) is not None for s in shards):
        return [_outcome(functools.partial(call, s)) for s in shards]
    pool = _executor()
    contexts = [contextvars.copy_context() for _ in shards]
    futures = [
        pool.submit(ctx.run, _outcome, functools.partial(call, s)) for ctx, s in zip(contexts, shards, strict=True)
    ]
    outcomes = [f.result() for f in futures]
    for ctx, s in zip(contexts, shards, strict=True):
        written = ctx.run(_positions.pending, s)
        if written is not None and written != _positions.pending(s):
            _positions.record(s, written.lsn)
    return outcomes
