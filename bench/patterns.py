"""Throughput of the messaging patterns on PostgreSQL: event-store appends and outbox messages relayed.

    python -m bench.patterns            # full sizes, 3 repeats -> docs/benchmarks-patterns.json
    python -m bench.patterns --quick    # sizes / 10, 1 repeat: a smoke run of about 15 s

Sync and async, each case at a fixed size: `EventStore.append` with one event per append, with
ten, and from eight concurrent appenders to distinct streams; `Relay.run_once` rounds moving a
filled outbox to RabbitMQ (publisher confirms), NATS JetStream and Redis Streams until it is
empty. One untimed warm-up pass of every case (at a tenth of its size), then the timed repeats in
rounds, the order rotated each round, as the suite does; the median is reported. The results go
to JSON beside the suite's, and the "Patterns throughput" section of docs/benchmarks.md is
rewritten from it (``python -m bench`` keeps that section when it regenerates the page).

PostgreSQL is ``BENCH_POSTGRESQL_URL`` (default ``postgresql://postgres@127.0.0.1:5432/bench_ar``;
the database is created when missing); every run uses tables, queues, streams and subjects of
its own (a random tag) and removes them at the end. Brokers: ``BENCH_RABBITMQ_URL``,
``BENCH_NATS_URL``, ``BENCH_REDIS_URL`` (the loopback servers' default ports by default).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import importlib.metadata
import json
import os
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench import machine, patterns_report, schema
from bench.patterns_brokers import BROKERS, Destination, destination
from bench.targets import Target

QUICK_DIVISOR = 10
WARMUP_DIVISOR = 10
FULL_REPEATS = 3
QUICK_REPEATS = 1
#: Concurrent appenders (threads or tasks), each to a stream of its own.
WRITERS = 8
#: Distinct outbox keys: the relay keeps each key's order, and publishes different keys at once.
KEYS = 64
CONNECTION = "bench_patterns"
#: Client libraries whose versions matter to these numbers, besides the suite's.
PACKAGES = ("aio-pika", "nats-py", "redis")


@dataclass(frozen=True)
class Sizes:
    """Operations per timed pass; ``--quick`` divides them all by 10."""

    appends: int = 2_000  # one event each, one writer
    batch_appends: int = 500  # ten events each, one writer
    writer_appends: int = 250  # one event each, per writer, WRITERS writers
    messages: int = 2_000  # outbox messages relayed to each broker

    def scaled(self, divisor: int) -> Sizes:
        """Every size divided by ``divisor`` (at least one operation)."""
        return Sizes(*(max(1, value // divisor) for value in asdict(self).values()))


@dataclass(frozen=True)
class Case:
    """One measured case: ``key`` in the results, what one pass does, its unit per second."""

    key: str
    title: str
    unit: str
    writers: int = 1
    per_append: int = 1
    broker: str = ""
    baseline: bool = False

    def operations(self, size: int) -> int:
        """Events, messages or commits a pass of ``size`` moves (the per-second numerator)."""
        return size * self.writers * self.per_append

    def size(self, sizes: Sizes) -> int:
        """Appends per writer, or messages, of one pass."""
        if self.broker:
            return sizes.messages
        if self.writers > 1:
            return sizes.writer_appends
        return sizes.batch_appends if self.per_append > 1 else sizes.appends

    def describe(self, sizes: Sizes) -> str:
        """What one pass is, for the report."""
        if self.broker:
            return f"{sizes.messages:,} messages"
        if self.baseline:
            return f"{sizes.appends:,} commits"
        appends = f"{self.size(sizes):,} appends" + (f" x {self.writers} writers" if self.writers > 1 else "")
        return appends + (f" of {self.per_append} events" if self.per_append > 1 else "")


CASES: tuple[Case, ...] = (
    # What one commit costs on this server at this moment: the ceiling of one appender.
    Case("commit", "reference: one-row INSERT + COMMIT (SQLAlchemy Core), 1 writer", "commits/s", baseline=True),
    Case("append-1", "event store: 1 event per append, 1 appender", "events/s"),
    Case("append-10", "event store: 10 events per append, 1 appender", "events/s", per_append=10),
    Case(
        "append-concurrent",
        f"event store: 1 event per append, {WRITERS} concurrent appenders to distinct streams",
        "events/s",
        writers=WRITERS,
    ),
    *(
        Case(f"relay-{name}", f"outbox relayed to {title}", "messages/s", broker=name)
        for name, title in BROKERS.items()
    ),
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(prog="python -m bench.patterns", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"divide all sizes by {QUICK_DIVISOR}, 1 repeat")
    parser.add_argument("--repeats", type=int, default=None, help=f"timed repeats (default {FULL_REPEATS})")
    parser.add_argument(
        "--output",
        type=Path,
        default=Path("docs/benchmarks.md"),
        help="the report whose section is rewritten; the JSON goes beside it",
    )
    args = parser.parse_args(argv)
    if args.repeats is None:
        args.repeats = QUICK_REPEATS if args.quick else FULL_REPEATS
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    return args


def _payload(i: int) -> dict[str, Any]:
    return {"n": i, "text": "x" * 100}


# -- one database of the run's own tables ---------------------------------------------------


class Bench:
    """The run's event store, outbox and broker destinations, on tables named by its tag."""

    def __init__(self, target: Target, tag: str) -> None:
        from activerecord import ConnectionManager
        from activerecord.patterns import EventStore, Outbox

        self.tag = tag
        ConnectionManager.configure(
            {
                CONNECTION: {
                    "driver": "postgresql",
                    "host": target.host,
                    "port": target.port,
                    "user": target.user,
                    "password": target.password,
                    "database": target.database,
                    # The concurrent appenders, plus the relay's own statements.
                    "pool_size": WRITERS + 2,
                }
            }
        )
        self.store = EventStore(CONNECTION, prefix=f"bp_{tag}_")
        self.outbox = Outbox(CONNECTION, table=f"bp_{tag}_outbox")
        self.baseline_table = f"bp_{tag}_commits"
        self.destinations: dict[str, Destination] = {}
        self.relays: dict[tuple[str, str], Any] = {}
        self.passes = 0
        self._committed = 0

    def create(self) -> None:
        """The tables (the store's four and the outbox)."""
        from activerecord import ConnectionManager

        self.store.create_tables()
        self.outbox.create_table()
        with ConnectionManager.engine(CONNECTION).begin() as conn:
            conn.exec_driver_sql(f"CREATE TABLE {self.baseline_table} (id bigserial PRIMARY KEY, v text)")

    def drop(self) -> None:
        """Drop every table of this run's tag."""
        from activerecord import ConnectionManager

        with ConnectionManager.engine(CONNECTION).begin() as conn:
            names = conn.exec_driver_sql(
                "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() AND tablename LIKE %s",
                (f"bp\\_{self.tag}\\_%",),
            ).scalars()
            for name in list(names):
                conn.exec_driver_sql(f'DROP TABLE IF EXISTS "{name}" CASCADE')

    def stream(self, case: Case, mode: str, writer: int) -> str:
        """A stream of its own for each pass and writer: every pass starts new streams."""
        return f"{case.key}-{mode}-{self.passes}-{writer}"

    # -- one pass's parts ---------------------------------------------------------------------

    def runners(self, case: Case) -> tuple[Callable[[Case, int], None], Callable[[Case, int], Awaitable[None]]]:
        """The sync and the async form of what ``case`` times."""
        if case.baseline:
            return self.commit_sync, self.commit_async
        if case.broker:
            return self.relay_sync, self.relay_async
        return self.append_sync, self.append_async

    def prepare(self, case: Case, size: int) -> None:
        """Before the timing: fill the outbox, or count the reference's rows."""
        if case.broker:
            self.fill(self.destinations[case.broker].topic, size)
        elif case.baseline:
            self._committed = self.committed()

    def check(self, case: Case, mode: str, size: int) -> None:
        """After the timing: the pass did all it was to do (and the outbox is emptied of it)."""
        if case.broker:
            self.outbox.purge_sent(dt.timedelta(0))
        elif case.baseline:
            written = self.committed() - self._committed
            if written != size:
                raise RuntimeError(f"{case.key} {mode}: {written} rows committed, {size} expected")
        else:
            self.check_appends(case, mode, size)

    # -- the reference: one commit -----------------------------------------------------------

    def commit_sync(self, case: Case, count: int) -> None:
        """``count`` one-row INSERT transactions through SQLAlchemy Core (psycopg)."""
        from activerecord import ConnectionManager

        engine, sql = ConnectionManager.engine(CONNECTION), f"INSERT INTO {self.baseline_table} (v) VALUES ('x')"
        for _ in range(count):
            with engine.begin() as conn:
                conn.exec_driver_sql(sql)

    async def commit_async(self, case: Case, count: int) -> None:
        """``count`` one-row INSERT transactions through SQLAlchemy async Core (asyncpg)."""
        from activerecord import ConnectionManager

        engine = ConnectionManager.async_engine(CONNECTION)
        sql = f"INSERT INTO {self.baseline_table} (v) VALUES ('x')"
        for _ in range(count):
            async with engine.begin() as conn:
                await conn.exec_driver_sql(sql)

    def committed(self) -> int:
        """Rows the reference has written so far."""
        from activerecord import ConnectionManager

        with ConnectionManager.engine(CONNECTION).connect() as conn:
            return int(conn.exec_driver_sql(f"SELECT count(*) FROM {self.baseline_table}").scalar_one())

    # -- event store -----------------------------------------------------------------------

    def append_sync(self, case: Case, appends: int) -> None:
        """``appends`` appends from each of the case's writers (threads), sync API."""
        from activerecord.patterns import NewEvent

        events = [NewEvent("Measured", _payload(i)) for i in range(case.per_append)]
        streams = [self.stream(case, "sync", w) for w in range(case.writers)]

        def work(stream: str) -> None:
            for _ in range(appends):
                self.store.append(stream, events)

        if case.writers == 1:
            work(streams[0])
            return
        errors: list[BaseException] = []

        def guarded(stream: str) -> None:
            try:
                work(stream)
            except BaseException as exc:  # re-raised below, on the measuring thread
                errors.append(exc)

        threads = [threading.Thread(target=guarded, args=(s,)) for s in streams]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            raise errors[0]

    async def append_async(self, case: Case, appends: int) -> None:
        """``appends`` appends from each of the case's writers (tasks), async API."""
        from activerecord.patterns import NewEvent

        events = [NewEvent("Measured", _payload(i)) for i in range(case.per_append)]

        async def work(stream: str) -> None:
            for _ in range(appends):
                await self.store.aappend(stream, events)

        await asyncio.gather(*(work(self.stream(case, "async", w)) for w in range(case.writers)))

    def check_appends(self, case: Case, mode: str, appends: int) -> None:
        """Every stream of the pass holds exactly what was appended."""
        for writer in range(case.writers):
            version = self.store.stream_version(self.stream(case, mode, writer))
            if version != appends * case.per_append:
                raise RuntimeError(
                    f"{case.key} {mode}: stream at version {version}, {appends * case.per_append} expected"
                )

    # -- outbox and relay ------------------------------------------------------------------

    def fill(self, topic: str, count: int) -> None:
        """``count`` pending messages for ``topic``, committed together (untimed)."""
        with self.outbox.model.transaction():
            for i in range(count):
                self.outbox.publish(topic, _payload(i), key=f"k{i % KEYS}")

    def relay_for(self, case: Case, mode: str) -> Any:
        """The relay of this broker and mode, made once: the warm-up pass opens its connections."""
        from activerecord.patterns import Relay

        if (case.broker, mode) not in self.relays:
            publisher = self.destinations[case.broker].publisher()
            self.relays[case.broker, mode] = Relay(publisher, outbox=self.outbox)
        return self.relays[case.broker, mode]

    def relay_sync(self, case: Case, count: int) -> None:
        """`Relay.run_once` rounds until ``count`` messages are out."""
        relay, done = self.relay_for(case, "sync"), 0
        while done < count:
            published = relay.run_once()
            if published == 0:
                raise RuntimeError(f"{case.key} sync: relay stalled at {done}/{count}: {relay.stats()}")
            done += published

    async def relay_async(self, case: Case, count: int) -> None:
        """`Relay.arun_once` rounds until ``count`` messages are out."""
        relay, done = self.relay_for(case, "async"), 0
        while done < count:
            published = await relay.arun_once()
            if published == 0:
                raise RuntimeError(f"{case.key} async: relay stalled at {done}/{count}: {await relay.astats()}")
            done += published

    def close_sync_relays(self) -> None:
        """Close the sync relays (and their publishers' loop threads)."""
        for (_, mode), relay in self.relays.items():
            if mode == "sync":
                relay.close()

    async def close_async_relays(self) -> None:
        """Close the async relays."""
        for (_, mode), relay in self.relays.items():
            if mode == "async":
                await relay.aclose()


# -- one pass --------------------------------------------------------------------------------


async def _pass(bench: Bench, case: Case, mode: str, size: int) -> float:
    """One pass of ``case`` in ``mode`` at ``size``; its figure per second (setup and checks untimed)."""
    bench.passes += 1
    await asyncio.to_thread(bench.prepare, case, size)
    run_sync, run_async = bench.runners(case)
    work = asyncio.to_thread(run_sync, case, size) if mode == "sync" else run_async(case, size)
    started = time.perf_counter()
    await work
    seconds = time.perf_counter() - started
    if case.broker:
        dest = bench.destinations[case.broker]
        reached = await dest.count()
        if reached != size:
            raise RuntimeError(f"{case.key} {mode}: {reached} messages reached the broker, {size} expected")
        await dest.purge()
    await asyncio.to_thread(bench.check, case, mode, size)
    return case.operations(size) / seconds


# -- the run ---------------------------------------------------------------------------------


def _packages() -> dict[str, str]:
    versions = machine.package_versions()
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "absent"
    return versions


async def _measure(bench: Bench, sizes: Sizes, repeats: int) -> dict[tuple[str, str], list[float]]:
    plan = [(case, mode) for case in CASES for mode in ("sync", "async")]
    warmup = sizes.scaled(WARMUP_DIVISOR)
    for case, mode in plan:
        await _pass(bench, case, mode, case.size(warmup))
    rates: dict[tuple[str, str], list[float]] = {(case.key, mode): [] for case, mode in plan}
    for round_no in range(repeats):
        # Rotate the order so drifting load, and each case's neighbour, are shared by all.
        shift = round_no * 5 % len(plan)
        for case, mode in plan[shift:] + plan[:shift]:
            rates[case.key, mode].append(await _pass(bench, case, mode, case.size(sizes)))
        print(f"  patterns: round {round_no + 1}/{repeats} done", file=sys.stderr)
    return rates


async def _run(target: Target, sizes: Sizes, repeats: int) -> tuple[dict[tuple[str, str], list[float]], dict[str, str]]:
    tag = uuid.uuid4().hex[:8]
    bench = Bench(target, tag)
    servers = {"postgresql": machine.server_version(target)}
    try:
        await asyncio.to_thread(bench.create)
        for name in BROKERS:
            bench.destinations[name] = await destination(name, tag)
            servers[name] = await bench.destinations[name].server_version()
        rates = await _measure(bench, sizes, repeats)
    finally:
        await asyncio.to_thread(bench.close_sync_relays)
        await bench.close_async_relays()
        for dest in bench.destinations.values():
            await dest.delete()
        await asyncio.to_thread(bench.drop)
        from activerecord import ConnectionManager

        await ConnectionManager.aremove(CONNECTION)
    return rates, servers


def main(argv: list[str] | None = None) -> None:
    """Measure, write the JSON and the report's section, print the section."""
    args = parse_args(argv)
    sizes = Sizes().scaled(QUICK_DIVISOR) if args.quick else Sizes()
    target = Target.for_backend("postgresql")
    schema.ensure_database(target)
    load_at_start = os.getloadavg()[0]
    started = time.perf_counter()
    rates, servers = asyncio.run(_run(target, sizes, args.repeats))
    info = machine.describe()
    info["packages"] = _packages()
    results = []
    for case in CASES:
        for mode in ("sync", "async"):
            values = rates[case.key, mode]
            results.append(
                {
                    "key": case.key,
                    "title": case.title,
                    "unit": case.unit,
                    "mode": mode,
                    "pass": case.describe(sizes),
                    "rates": values,
                    "median": statistics.median(values),
                }
            )
    meta = {
        "machine": info,
        "servers": servers,
        "sizes": asdict(sizes),
        "quick": args.quick,
        "repeats": args.repeats,
        "seconds": time.perf_counter() - started,
        "load": [load_at_start, os.getloadavg()[0]],
        "command": "python -m bench.patterns " + " ".join(sys.argv[1:] if argv is None else argv),
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
    }
    output: Path = args.output
    data = {"meta": meta, "results": results}
    patterns_report.json_path(output).write_text(json.dumps(data, indent=1), encoding="utf-8")
    section = patterns_report.render(data)
    if output.exists():
        output.write_text(patterns_report.replace_section(output.read_text(encoding="utf-8"), section), "utf-8")
    print(section)
    print(
        f"wrote {patterns_report.json_path(output)} and the section of {output} in {meta['seconds']:.0f} s",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
