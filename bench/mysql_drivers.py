"""Pick the MySQL/MariaDB driver pair by measuring them through SQLAlchemy Core.

``python -m bench.mysql_drivers [--output mysql-driver-choice.md]`` times PyMySQL (sync) and
asyncmy / aiomysql (async) on 2,000 single-row inserts, a 10,000-row fetch and 1,000
primary-key gets, and writes a markdown table of the medians.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import (
    Column,
    DateTime,
    Engine,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    create_engine,
    insert,
    select,
)
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from bench.contenders.sa_schema import new_pk
from bench.targets import Target
from bench.workloads import make_rows

INSERTS = 2_000
FETCH_ROWS = 10_000
GETS = 1_000
REPEATS = 3

_metadata = MetaData()
item = Table(
    "bench_driver_item",
    _metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(100), nullable=False),
    Column("value", Integer, nullable=False),
    Column("score", Float, nullable=False),
    Column("created_at", DateTime, nullable=False),
)


@dataclass
class DriverTimes:
    """Per-operation wall times (µs) of one driver, one list entry per repeat."""

    insert: list[float]
    fetch: list[float]
    get: list[float]


def _per_op(start: int, count: int) -> float:
    return (time.perf_counter_ns() - start) / 1_000 / count


def _fresh_rows() -> list[dict[str, object]]:
    return [r._asdict() for r in make_rows(FETCH_ROWS, seed=7)]


def _sync_round(engine: Engine, times: DriverTimes) -> None:
    rows = _fresh_rows()
    with engine.begin() as conn:
        conn.execute(item.delete())
    with engine.begin() as conn:
        start = time.perf_counter_ns()
        new_ids = [new_pk(conn.execute(insert(item).values(**row))) for row in rows[:INSERTS]]
        times.insert.append(_per_op(start, INSERTS))
        assert len(set(new_ids)) == INSERTS
    with engine.begin() as conn:
        conn.execute(item.delete())
        conn.execute(insert(item), rows)
        ids = list(conn.execute(select(item.c.id)).scalars())
    with engine.connect() as conn:
        start = time.perf_counter_ns()
        fetched = conn.execute(select(item)).all()
        times.fetch.append(_per_op(start, FETCH_ROWS))
        assert len(fetched) == FETCH_ROWS
        start = time.perf_counter_ns()
        for pk in ids[:: FETCH_ROWS // GETS]:
            conn.execute(select(item).where(item.c.id == pk)).one()
        times.get.append(_per_op(start, GETS))


async def _async_round(engine: AsyncEngine, times: DriverTimes) -> None:
    rows = _fresh_rows()
    async with engine.begin() as conn:
        await conn.execute(item.delete())
    async with engine.begin() as conn:
        start = time.perf_counter_ns()
        new_ids = [new_pk(await conn.execute(insert(item).values(**row))) for row in rows[:INSERTS]]
        times.insert.append(_per_op(start, INSERTS))
        assert len(set(new_ids)) == INSERTS
    async with engine.begin() as conn:
        await conn.execute(item.delete())
        await conn.execute(insert(item), rows)
        ids = list((await conn.execute(select(item.c.id))).scalars())
    async with engine.connect() as conn:
        start = time.perf_counter_ns()
        fetched = (await conn.execute(select(item))).all()
        times.fetch.append(_per_op(start, FETCH_ROWS))
        assert len(fetched) == FETCH_ROWS
        start = time.perf_counter_ns()
        for pk in ids[:: FETCH_ROWS // GETS]:
            (await conn.execute(select(item).where(item.c.id == pk))).one()
        times.get.append(_per_op(start, GETS))


def measure(target: Target, repeats: int = REPEATS) -> dict[str, DriverTimes]:
    """Run every candidate ``repeats`` times, interleaved so drift hits them all alike."""
    base = target.sqlalchemy_url(asynchronous=False)
    sync_engine = create_engine(base.set(drivername="mysql+pymysql"))
    async_engines = {
        name: create_async_engine(base.set(drivername=f"mysql+{name}")) for name in ("asyncmy", "aiomysql")
    }
    with sync_engine.begin() as conn:
        item.drop(conn, checkfirst=True)
        item.create(conn)
    results = {name: DriverTimes([], [], []) for name in ("pymysql", *async_engines)}
    # One untimed round each first: connection setup and compile caches are not the subject.
    warmup = {name: DriverTimes([], [], []) for name in results}
    _sync_round(sync_engine, warmup["pymysql"])

    async def run_async() -> None:
        for name, engine in async_engines.items():
            await _async_round(engine, warmup[name])
        for _ in range(repeats):
            _sync_round(sync_engine, results["pymysql"])
            for name, engine in async_engines.items():
                await _async_round(engine, results[name])
        for engine in async_engines.values():
            await engine.dispose()

    asyncio.run(run_async())
    with sync_engine.begin() as conn:
        item.drop(conn)
    sync_engine.dispose()
    return results


def render(results: dict[str, DriverTimes], repeats: int) -> str:
    """Markdown table of median µs/op with min-max spread."""

    def cell(values: list[float]) -> str:
        return f"{statistics.median(values):.1f} ({min(values):.1f}-{max(values):.1f})"

    lines = [
        "# MySQL/MariaDB driver choice",
        "",
        (
            f"Measured through SQLAlchemy Core on MariaDB, median µs per operation of {repeats} "
            "repeats (min-max in parentheses); lower is better. Inserts are single-row "
            f"`insert().values()` with `inserted_primary_key`, {INSERTS:,} in one transaction; the "
            f"fetch is `select(table)` of {FETCH_ROWS:,} rows (µs per row); gets are {GETS:,} "
            "primary-key selects on one connection."
        ),
        "",
        "| driver | mode | version | insert µs/op | fetch µs/row | pk get µs/op |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, times in results.items():
        mode = "sync" if name == "pymysql" else "async"
        version = importlib.metadata.version("PyMySQL" if name == "pymysql" else name)
        lines.append(
            f"| {name} | {mode} | {version} | {cell(times.insert)} | {cell(times.fetch)} | {cell(times.get)} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--output", type=Path, default=Path("mysql-driver-choice.md"))
    parser.add_argument("--repeats", type=int, default=REPEATS)
    args = parser.parse_args()
    results = measure(Target.for_backend("mysql"), args.repeats)
    text = render(results, args.repeats)
    args.output.write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
