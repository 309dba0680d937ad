"""What an ``on_all_shards()`` query costs as the shard group widens: 2, 8 and 32 shards.

    python -m bench.fanout                       # SQLite files and PostgreSQL databases
    python -m bench.fanout --backend postgresql --widths 2,8,32 --runs 50
    python -m bench.fanout --slow                # 8 PostgreSQL shards, ~20 ms per shard (pg_sleep)

Each shard holds 20 rows; the query reads them all (``all()``) and counts them (``count()``),
sync and async, median of ``--runs`` calls after a warm-up. PostgreSQL shards are databases on the
server of ``BENCH_POSTGRESQL_URL``, made and dropped by the run. docs/scaling.md quotes the output.

``--slow`` checks that the fan-out overlaps the shards: every shard's query sleeps ``pg_sleep(0.02)``
once, and the fan-out (sync and async) is compared with the slowest single shard (target 1.5x).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from activerecord import ActiveRecord, ConnectionManager, Field, IntegerField, StringField

ROWS_PER_SHARD = 20


class Account(ActiveRecord):
    __tablename__ = "fanout_accounts"
    __connection__ = "fanout"
    __shard_key__ = "id"
    id: Field[int] = IntegerField(primary_key=True)
    name: Field[str] = StringField(max_length=40)


def _median_ms(fn: Callable[[], Any], runs: int) -> float:
    fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


async def _amedian_ms(fn: Callable[[], Any], runs: int) -> float:
    await fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        await fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def _shards(backend: str, width: int, tmp: str, admin: sa.Engine | None, tag: str) -> dict[str, Any]:
    shards: dict[str, Any] = {}
    for i in range(width):
        if backend == "sqlite":
            shards[f"fanout_{i}"] = {"driver": "sqlite", "database": os.path.join(tmp, f"s{i}.db")}
        else:
            assert admin is not None
            name = f"fanout_{tag}_{i}"
            with admin.connect() as conn:
                conn.exec_driver_sql(f"CREATE DATABASE {name}")
            url = admin.url
            shards[f"fanout_{i}"] = {
                "driver": "postgresql",
                "host": url.host,
                "port": url.port,
                "user": url.username,
                "database": name,
            }
    return shards


def measure(backend: str, width: int, runs: int) -> dict[str, float]:
    admin = _admin() if backend == "postgresql" else None
    tag = uuid.uuid4().hex[:6]
    with tempfile.TemporaryDirectory() as tmp:
        shards = _shards(backend, width, tmp, admin, tag)
        ConnectionManager.configure({"fanout": {"shards": shards}})
        try:
            Account.create_all()
            Account.insert_many([{"id": n, "name": f"a{n}"} for n in range(width * ROWS_PER_SHARD)])
            query = Account.find().on_all_shards()
            result = {
                "sync all": _median_ms(query.all, runs),
                "sync count": _median_ms(query.count, runs),
            }

            async def amain() -> None:
                result["async all"] = await _amedian_ms(query.aall, runs)
                result["async count"] = await _amedian_ms(query.acount, runs)
                await ConnectionManager.aremove("fanout")

            asyncio.run(amain())
        finally:
            if ConnectionManager.is_configured("fanout"):
                ConnectionManager.remove("fanout")
            if admin is not None:
                with admin.connect() as conn:
                    for shard in shards.values():
                        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {shard['database']} WITH (FORCE)")
                admin.dispose()
    return result


def _admin() -> sa.Engine:
    url = os.environ.get("BENCH_POSTGRESQL_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    return sa.create_engine(url, isolation_level="AUTOCOMMIT")


def measure_slow(width: int, runs: int, sleep: float = 0.02) -> dict[str, float]:
    """Medians (ms) of one shard alone (the slowest), and of the sync and async fan-out, each shard sleeping."""
    admin = _admin()
    tag = uuid.uuid4().hex[:6]
    with tempfile.TemporaryDirectory() as tmp:
        shards = _shards("postgresql", width, tmp, admin, tag)
        ConnectionManager.configure({"fanout": {"shards": shards}})
        try:
            Account.create_all()
            Account.insert_many([{"id": n, "name": f"a{n}"} for n in range(width)])  # one row per shard
            slow = Account.find().where(sa.text(f"pg_sleep({sleep})::text = ''")).order_by(Account.id)
            expected = [a.id for a in slow.on_all_shards().all()]
            assert expected == list(range(width)), expected
            result = {
                "slowest shard": max(_median_ms(slow.using(s).all, runs) for s in shards),
                "sync fan-out": _median_ms(slow.on_all_shards().all, runs),
            }

            async def amain() -> None:
                result["async fan-out"] = await _amedian_ms(slow.on_all_shards().aall, runs)
                assert [a.id for a in await slow.on_all_shards().aall()] == expected
                await ConnectionManager.aremove("fanout")

            asyncio.run(amain())
        finally:
            if ConnectionManager.is_configured("fanout"):
                ConnectionManager.remove("fanout")
            with admin.connect() as conn:
                for shard in shards.values():
                    conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {shard['database']} WITH (FORCE)")
            admin.dispose()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", default="sqlite,postgresql")
    parser.add_argument("--widths", default="2,8,32")
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--slow", action="store_true", help="8 PostgreSQL shards sleeping 20 ms each")
    args = parser.parse_args()
    if args.slow:
        r = measure_slow(8, args.runs)
        base = r["slowest shard"]
        print("| 8 PostgreSQL shards, pg_sleep(0.02) each | median (ms) | / slowest shard |")
        print("| --- | --- | --- |")
        for name, ms in r.items():
            print(f"| {name} | {ms:.1f} | {ms / base:.2f}x |")
        return
    print("| backend | shards | sync all (ms) | sync count (ms) | async all (ms) | async count (ms) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for backend in args.backend.split(","):
        for width in (int(w) for w in args.widths.split(",")):
            r = measure(backend, width, args.runs)
            print(
                f"| {backend} | {width} | {r['sync all']:.2f} | {r['sync count']:.2f} | "
                f"{r['async all']:.2f} | {r['async count']:.2f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
