"""Events appended per second by `EventStore.append` on PostgreSQL (a small script, not part of the suite).

    PYTHONPATH=$PWD python -m bench.event_store_throughput [--url postgresql://postgres@127.0.0.1:5432/postgres]

Makes a scratch database, measures a few shapes of load for ``--seconds`` each, drops the
database. Every append is its own committed transaction (synchronous_commit as the server has it).
"""

from __future__ import annotations

import argparse
import asyncio
import threading
import time
import uuid
from collections.abc import Callable

import sqlalchemy as sa

from activerecord import ConnectionManager
from activerecord.patterns import EventStore, NewEvent


def _events(n: int) -> list[NewEvent]:
    return [NewEvent("Measured", {"n": i, "payload": "x" * 100}) for i in range(n)]


def _threads(store: EventStore, writers: int, per_append: int, seconds: float) -> float:
    counts = [0] * writers
    stop = time.monotonic() + seconds

    def work(i: int) -> None:
        stream, events = f"bench-{i}", _events(per_append)
        while time.monotonic() < stop:
            store.append(stream, events)
            counts[i] += per_append

    threads = [threading.Thread(target=work, args=(i,)) for i in range(writers)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(counts) / (time.monotonic() - started)


async def _tasks(store: EventStore, writers: int, per_append: int, seconds: float) -> float:
    counts = [0] * writers
    stop = time.monotonic() + seconds

    async def work(i: int) -> None:
        stream, events = f"abench-{i}", _events(per_append)
        while time.monotonic() < stop:
            await store.aappend(stream, events)
            counts[i] += per_append

    started = time.monotonic()
    await asyncio.gather(*(work(i) for i in range(writers)))
    return sum(counts) / (time.monotonic() - started)


def _baseline(seconds: float) -> float:
    """One-row INSERT + COMMIT per second on the same database: the ceiling of one writer."""
    engine = ConnectionManager.engine("default")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE baseline (id bigserial PRIMARY KEY, v text)")
    count, stop, started = 0, time.monotonic() + seconds, time.monotonic()
    while time.monotonic() < stop:
        with engine.begin() as conn:
            conn.exec_driver_sql("INSERT INTO baseline (v) VALUES ('x')")
        count += 1
    return count / (time.monotonic() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    admin = sa.create_engine(sa.make_url(args.url).set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT")
    name = f"ar_es_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = sa.make_url(args.url)
    try:
        ConnectionManager.configure(
            {
                "default": {
                    "driver": "postgresql",
                    "host": url.host,
                    "port": url.port or 5432,
                    "user": url.username,
                    "database": name,
                    "pool_size": 10,
                }
            }
        )
        store = EventStore("default")
        store.create_tables()
        cases: list[tuple[str, Callable[[], float]]] = [
            ("baseline: 1-row INSERT + COMMIT, 1 writer", lambda: _baseline(args.seconds)),
            ("sync, 1 writer, 1 event/append", lambda: _threads(store, 1, 1, args.seconds)),
            ("sync, 1 writer, 10 events/append", lambda: _threads(store, 1, 10, args.seconds)),
            ("sync, 8 writer threads, 1 event/append", lambda: _threads(store, 8, 1, args.seconds)),
            ("async, 8 writer tasks, 1 event/append", lambda: asyncio.run(_tasks(store, 8, 1, args.seconds))),
        ]
        for label, case in cases:
            print(f"{label:45s} {case():9,.0f} events/s")
        print(f"total events stored: {store.head():,}")
    finally:
        ConnectionManager.clear()
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


if __name__ == "__main__":
    main()
