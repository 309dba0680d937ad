"""W8's harness: many callers over one pool, each operation timed from its start to its end.

The contender provides one call per operation kind (a PK get, a single-row update, an insert,
each outside any transaction the caller holds); this module runs the shared list of
operations from `W8_THREADS` threads (sync) or `W8_TASKS` tasks (async), each caller taking
the next operation as soon as it is free. An operation's latency includes its wait for a
pooled connection, so unfair hand-off shows up as the worst operation.

An async operation starts with a pass through the event loop (``asyncio.sleep(0)``), and its
latency counts from before it, as a service's request starts from the loop when its bytes
arrive and waits there for its turn. Without it, a library whose operations never yield
(activerecord's async SQLite, which waits for a quick statement in place) ran one task's
operations back to back while the other tasks waited unmeasured: a median of 0.3 ms where
every operation had in fact waited its turn behind the others, or about 80 ms in a run where a
queue for the pool had once formed (then every operation yields at checkout), so the figure
depended on the run's luck.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from bench.workloads import W8_TASKS, W8_THREADS, MixedOp


@dataclass(frozen=True)
class Mixed:
    """One W8 run: the wall time and every operation's latency (seconds)."""

    wall: float
    latencies: list[float]

    def summary(self) -> dict[str, float]:
        """ops/s, p50, p99 and the worst operation (milliseconds)."""
        ordered = sorted(self.latencies)
        n = len(ordered)
        return {
            "ops_s": n / self.wall,
            "p50_ms": ordered[n // 2] * 1000,
            "p99_ms": ordered[min(n - 1, (n * 99) // 100)] * 1000,
            "worst_ms": ordered[-1] * 1000,
        }


def run_threads(call: Callable[[MixedOp], object], ops: Sequence[MixedOp], threads: int = W8_THREADS) -> Mixed:
    """``call(op)`` for every op, from ``threads`` threads; the first error is raised at the end."""
    latencies = [0.0] * len(ops)
    taken = iter(range(len(ops)))
    lock = threading.Lock()
    errors: list[BaseException] = []

    def worker() -> None:
        while not errors:
            with lock:
                i = next(taken, None)
            if i is None:
                return
            started = time.perf_counter()
            try:
                call(ops[i])
            except BaseException as exc:  # raised in the harness's thread below
                errors.append(exc)
                return
            latencies[i] = time.perf_counter() - started

    workers = [threading.Thread(target=worker, name=f"w8-{n}") for n in range(threads)]
    started = time.perf_counter()
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    wall = time.perf_counter() - started
    if errors:
        raise errors[0]
    return Mixed(wall, latencies)


async def run_tasks(
    call: Callable[[MixedOp], Awaitable[object]], ops: Sequence[MixedOp], tasks: int = W8_TASKS
) -> Mixed:
    """``await call(op)`` for every op, from ``tasks`` concurrent tasks."""
    latencies = [0.0] * len(ops)
    taken = iter(range(len(ops)))

    async def worker() -> None:
        for i in taken:  # one shared iterator: each task takes the next op when it is free
            started = time.perf_counter()
            await asyncio.sleep(0)  # (the request arrives through the loop: its wait there counts)
            await call(ops[i])
            latencies[i] = time.perf_counter() - started

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(tasks)))
    return Mixed(time.perf_counter() - started, latencies)
