"""One contender on one backend, in its own process, driven by the runner one pass at a time.

``python -m bench.child --contender NAME --target JSON --sizes JSON`` reads commands on stdin,
one per line, and answers each with one JSON line:

- ``warmup``: an untimed pass at small sizes (fills compile and statement caches);
- ``repeat``: one timed pass over W1..W7 -> µs per operation and W7's RSS growth;
- ``memory``: an untimed W7 pass under tracemalloc -> heap peak;
- ``quit``: close the connections and exit.

The runner interleaves the repeats of all contenders of a backend (A1 B1 C1 A2 B2 …), so a
change in machine load hits every contender alike instead of skewing whichever ran then.
The first line written is ``{"status": "ready"}``, or ``{"status": "unavailable", ...}`` when
the contender's library cannot be imported. A contender that raises is left to crash: the
runner reads the traceback from stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, replace
from typing import Any, TextIO, TypeVar

from bench.contenders import BY_NAME
from bench.contenders.base import AsyncContender, SyncContender
from bench.memory import PeakMemory, TracedBatches
from bench.mixed import Mixed, run_tasks, run_threads
from bench.targets import Target
from bench.workloads import PAGE_THRESHOLD, W8_TASKS, W8_THREADS, Inputs, MixedOp, Sizes, make_inputs, op_count

T = TypeVar("T")
Reply = dict[str, Any]

#: Batches of W7 traced by tracemalloc on the memory pass (see bench.memory).
TRACED_BATCHES = 3


def _ignore(size: int) -> None:
    """The ``on_batch`` of timed passes: a call that costs next to nothing."""


class WorkloadCheckFailed(AssertionError):
    """A contender returned the wrong count: its time would not be comparable."""


def _check(key: str, got: int, expected: int) -> None:
    if got != expected:
        raise WorkloadCheckFailed(f"{key}: expected {expected}, got {got}")


class _Clock:
    """µs per operation of each workload in one pass; ``timed=False`` for the warm-up."""

    def __init__(self, sizes: Sizes, *, timed: bool) -> None:
        self.sizes = sizes
        self.timed = timed
        self.timings: dict[str, float] = {}
        self.rss_mib = 0.0
        self.mixed: dict[str, float] | None = None

    def start(self) -> int:
        # Collect the previous workload's garbage now, so it is not charged to this one.
        gc.collect()
        return time.perf_counter_ns()

    def stop(self, key: str, started: int) -> None:
        elapsed_us = (time.perf_counter_ns() - started) / 1_000
        self.timings[key] = elapsed_us / op_count(key, self.sizes)

    def reply(self) -> Reply:
        return {"timings_us": self.timings, "rss_mib": self.rss_mib, "mixed": self.mixed}

    def stop_mixed(self, started: int, mixed: Mixed, gets: int, found: int) -> None:
        """W8: µs per operation is its throughput's inverse; the latencies go alongside."""
        _check("W8", found, gets)
        self.stop("W8", started)
        self.mixed = mixed.summary()


def _offers(contender: SyncContender | AsyncContender, method: str) -> bool:
    """Whether the contender implements an optional workload (W2n, W2r, W8)."""
    base = SyncContender if isinstance(contender, SyncContender) else AsyncContender
    return getattr(type(contender), method) is not getattr(base, method)


def _mixed_ops(contender: SyncContender | AsyncContender, ops: list[MixedOp]) -> list[MixedOp]:
    """W8's operations with the insert rows as this contender's users hold them (untimed)."""
    rows = iter(contender.prepare_rows([op[2] for op in ops if op[0] == "insert"]))  # type: ignore[misc]
    return [(kind, pk, next(rows)) if kind == "insert" else (kind, pk, extra) for kind, pk, extra in ops]


def _sync_pass(contender: SyncContender, inputs: Inputs, clock: _Clock) -> None:
    """W1..W7 once; the warm-up (untimed clock) skips W7, which only repeats the stream."""

    def timed(key: str, call: Callable[[], T]) -> T:
        started = clock.start()
        result = call()
        clock.stop(key, started)
        return result

    sizes = inputs.sizes
    insert_rows = contender.prepare_rows(inputs.insert_rows)
    bulk_rows = contender.prepare_rows(inputs.bulk_rows)
    contender.reset()
    ids = timed("W1", lambda: contender.insert_returning(insert_rows))
    _check("W1", len(set(ids)), sizes.single_inserts)
    contender.reset()
    timed("W2", lambda: contender.bulk_insert(bulk_rows))
    _check("W3o", timed("W3o", contender.fetch_objects), sizes.bulk_rows)
    _check("W3d", timed("W3d", contender.fetch_dicts), sizes.bulk_rows)
    _check("W4", timed("W4", lambda: contender.get_by_pk(inputs.get_ids)), sizes.pk_gets)
    seen = timed(
        "W5",
        lambda: contender.pages(inputs.page_offsets, sizes.page_size, PAGE_THRESHOLD),
    )
    _check("W5", seen, inputs.expected_page_rows)
    timed("W6", lambda: contender.update_by_pk(inputs.updates))
    if _offers(contender, "bulk_insert_narrow"):
        timed("W2n", lambda: contender.bulk_insert_narrow(inputs.narrow_rows))
    if _offers(contender, "insert_many_returning"):
        keys = timed("W2r", lambda: contender.insert_many_returning(inputs.narrow_rows))
        _check("W2r", len(set(keys)), sizes.bulk_rows)
    if _offers(contender, "mixed_get"):
        ops = _mixed_ops(contender, inputs.mixed)
        hits: list[bool] = []  # (list.append is atomic: the threads share it)

        def one(op: MixedOp) -> None:
            kind, pk, extra = op
            if kind == "get":
                hits.append(contender.mixed_get(pk))
            elif kind == "update":
                contender.mixed_update(pk, extra)  # type: ignore[arg-type]
            else:
                contender.mixed_insert(extra)  # type: ignore[arg-type]

        if clock.timed:  # (the warm-up's own W8 fills the pool)
            run_threads(one, ops[: 2 * W8_THREADS])  # untimed: the pool fills, as in a running service
        hits.clear()
        started = clock.start()
        mixed = run_threads(one, ops)
        clock.stop_mixed(started, mixed, sum(op[0] == "get" for op in ops), sum(hits))
        contender.release()
    if clock.timed:
        with PeakMemory() as peak:
            count = timed("W7", lambda: contender.stream(sizes.stream_batch, _ignore))
        _check("W7", count, sizes.stream_rows)
        clock.rss_mib = peak.peak_mib


async def _async_pass(contender: AsyncContender, inputs: Inputs, clock: _Clock) -> None:
    """Async twin of :func:`_sync_pass`."""

    async def timed(key: str, call: Callable[[], Awaitable[T]]) -> T:
        started = clock.start()
        result = await call()
        clock.stop(key, started)
        return result

    sizes = inputs.sizes
    insert_rows = contender.prepare_rows(inputs.insert_rows)
    bulk_rows = contender.prepare_rows(inputs.bulk_rows)
    await contender.reset()
    ids = await timed("W1", lambda: contender.insert_returning(insert_rows))
    _check("W1", len(set(ids)), sizes.single_inserts)
    await contender.reset()
    await timed("W2", lambda: contender.bulk_insert(bulk_rows))
    _check("W3o", await timed("W3o", contender.fetch_objects), sizes.bulk_rows)
    _check("W3d", await timed("W3d", contender.fetch_dicts), sizes.bulk_rows)
    found = await timed("W4", lambda: contender.get_by_pk(inputs.get_ids))
    _check("W4", found, sizes.pk_gets)
    seen = await timed(
        "W5",
        lambda: contender.pages(inputs.page_offsets, sizes.page_size, PAGE_THRESHOLD),
    )
    _check("W5", seen, inputs.expected_page_rows)
    await timed("W6", lambda: contender.update_by_pk(inputs.updates))
    if _offers(contender, "bulk_insert_narrow"):
        await timed("W2n", lambda: contender.bulk_insert_narrow(inputs.narrow_rows))
    if _offers(contender, "insert_many_returning"):
        keys = await timed("W2r", lambda: contender.insert_many_returning(inputs.narrow_rows))
        _check("W2r", len(set(keys)), sizes.bulk_rows)
    if _offers(contender, "mixed_get"):
        ops = _mixed_ops(contender, inputs.mixed)
        hits: list[bool] = []

        async def one(op: MixedOp) -> None:
            kind, pk, extra = op
            if kind == "get":
                hits.append(await contender.mixed_get(pk))
            elif kind == "update":
                await contender.mixed_update(pk, extra)  # type: ignore[arg-type]
            else:
                await contender.mixed_insert(extra)  # type: ignore[arg-type]

        if clock.timed:
            await run_tasks(one, ops[:W8_TASKS])  # untimed: the pool fills (every task at once)
        hits.clear()
        started = clock.start()
        mixed = await run_tasks(one, ops)
        clock.stop_mixed(started, mixed, sum(op[0] == "get" for op in ops), sum(hits))
        await contender.release()
    if clock.timed:
        with PeakMemory() as peak:
            count = await timed("W7", lambda: contender.stream(sizes.stream_batch, _ignore))
        _check("W7", count, sizes.stream_rows)
        clock.rss_mib = peak.peak_mib


def _freeze_heap() -> None:
    """Move everything alive after the warm-up (modules, caches) out of the collector's way.

    The per-workload ``gc.collect()`` then only walks what the workloads allocate, so it
    stays cheap, and the library's own import-time objects never count as garbage work.
    """
    gc.collect()
    gc.freeze()


def _warmup_sizes(sizes: Sizes) -> Sizes:
    # Small enough to cost little, large enough to fill compile caches and pass the
    # drivers' prepare thresholds (psycopg prepares a statement on its 5th execution).
    # W8: one operation per task, every pooled connection opened.
    return replace(sizes, single_inserts=20, bulk_rows=100, pk_gets=10, page_queries=10, updates=10, mixed_ops=W8_TASKS)


class _Channel:
    """The JSON-lines conversation with the runner, on a private copy of stdout.

    fd 1 is pointed at stderr, so a library that prints cannot corrupt the protocol.
    """

    def __init__(self) -> None:
        self._out: TextIO = os.fdopen(os.dup(1), "w", encoding="utf-8")
        os.dup2(2, 1)

    def send(self, reply: Reply) -> None:
        self._out.write(json.dumps(reply) + "\n")
        self._out.flush()

    @staticmethod
    def receive() -> str:
        # A blocking read is right even inside the event loop: the process has nothing
        # else to do while another contender is being measured.
        return sys.stdin.readline().strip() or "quit"


def _serve_sync(contender: SyncContender, sizes: Sizes, channel: _Channel) -> None:
    inputs, warmup = make_inputs(sizes), make_inputs(_warmup_sizes(sizes))
    try:
        while (command := channel.receive()) != "quit":
            if command == "warmup":
                _sync_pass(contender, warmup, _Clock(warmup.sizes, timed=False))
                _freeze_heap()
                channel.send({"ok": True})
            elif command == "repeat":
                clock = _Clock(sizes, timed=True)
                _sync_pass(contender, inputs, clock)
                channel.send(clock.reply())
            elif command == "memory":
                with TracedBatches(TRACED_BATCHES) as traced:
                    count = contender.stream(sizes.stream_batch, traced)
                _check("W7", count, sizes.stream_rows)
                channel.send({"heap_mib": traced.peak_mib})
    finally:
        contender.close()


async def _serve_async(contender: AsyncContender, sizes: Sizes, channel: _Channel) -> None:
    inputs, warmup = make_inputs(sizes), make_inputs(_warmup_sizes(sizes))
    await contender.open()
    try:
        while (command := channel.receive()) != "quit":
            if command == "warmup":
                await _async_pass(contender, warmup, _Clock(warmup.sizes, timed=False))
                _freeze_heap()
                channel.send({"ok": True})
            elif command == "repeat":
                clock = _Clock(sizes, timed=True)
                await _async_pass(contender, inputs, clock)
                channel.send(clock.reply())
            elif command == "memory":
                with TracedBatches(TRACED_BATCHES) as traced:
                    count = await contender.stream(sizes.stream_batch, traced)
                _check("W7", count, sizes.stream_rows)
                channel.send({"heap_mib": traced.peak_mib})
    finally:
        await contender.close()


def main() -> None:
    """Entry point of the runner's subprocesses."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--contender", required=True, choices=sorted(BY_NAME))
    parser.add_argument("--target", required=True, help="Target as JSON")
    parser.add_argument("--sizes", default=json.dumps(asdict(Sizes())), help="Sizes as JSON")
    args = parser.parse_args()
    channel = _Channel()
    try:
        cls = BY_NAME[args.contender].load()
    except ImportError as exc:
        channel.send({"status": "unavailable", "reason": f"{type(exc).__name__}: {exc}"})
        return
    target = Target.from_json(json.loads(args.target))
    sizes = Sizes(**json.loads(args.sizes))
    channel.send({"status": "ready", "streaming": cls.streaming, "packages": list(cls.packages)})
    if issubclass(cls, SyncContender):
        _serve_sync(cls(target), sizes, channel)
    else:
        asyncio.run(_serve_async(cls(target), sizes, channel))


if __name__ == "__main__":
    main()
