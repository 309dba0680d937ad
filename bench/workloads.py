"""Workload definitions and their deterministic input data, shared by every contender.

Nothing here touches a database: the same seed gives every contender, in every process,
byte-identical rows, primary keys and offsets, so results differ only by library.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import NamedTuple

#: The table every contender writes. The runner gives each contender its own copy
#: (``item_table_for``) through this variable, so that contenders interleaved on one server
#: never share a table or wait on one another's locks.
TABLE = os.environ.get("BENCH_ITEM_TABLE", "bench_item")
STREAM_TABLE = "bench_stream"
#: The narrow table of W2n and W2r (two short string columns), one per contender like TABLE.
NARROW_TABLE = TABLE.replace("bench_item", "bench_narrow", 1)
NARROW_COLUMNS = ("a", "b")
COLUMNS = ("name", "value", "score", "created_at")
ALL_COLUMNS = ("id", *COLUMNS)
VALUE_RANGE = 1_000
# W5 filters on ``value < threshold``: about half of the table matches, so the database
# does a cheap ordered scan and the per-query overhead of the library dominates.
PAGE_THRESHOLD = VALUE_RANGE // 2
_EPOCH = datetime(2024, 1, 1, 0, 0, 0)


def item_table_for(contender: str) -> str:
    """Name of ``contender``'s own bench_item table (same DDL for all)."""
    return "bench_item_" + contender.replace("-", "_")


def narrow_table_for(contender: str) -> str:
    """Name of ``contender``'s own bench_narrow table."""
    return "bench_narrow_" + contender.replace("-", "_")


class Row(NamedTuple):
    """One bench_item row without its primary key."""

    name: str
    value: int
    score: float
    created_at: datetime


def make_rows(count: int, seed: int) -> list[Row]:
    """``count`` reproducible rows; microseconds are set so timestamp parsing is exercised."""
    rng = random.Random(seed)
    return [
        Row(
            name=f"item-{rng.randrange(10**9):09d}",
            value=rng.randrange(VALUE_RANGE),
            score=round(rng.random() * 1_000, 3),
            created_at=_EPOCH + timedelta(seconds=i, microseconds=rng.randrange(10**6)),
        )
        for i in range(count)
    ]


class NarrowRow(NamedTuple):
    """One bench_narrow row without its primary key: two short strings."""

    a: str
    b: str


def make_narrow_rows(count: int, seed: int) -> list[NarrowRow]:
    """``count`` reproducible narrow rows (8 and 6 characters)."""
    rng = random.Random(seed)
    return [NarrowRow(a=f"a{rng.randrange(10**7):07d}", b=f"b{rng.randrange(10**5):05d}") for _ in range(count)]


#: ``--quick`` divides every operation count by this: a smoke run of under a minute on two
#: cores (its timed passes then take about half of it; process starts and warm-ups most of the rest).
QUICK_DIVISOR = 20

#: W8's concurrency: callers in flight, and the pool they share.
W8_TASKS = 100
W8_THREADS = 16
W8_POOL = 10
#: W8's mix: PK gets, single-row updates, inserts (out of 10).
W8_MIX = (("get", 7), ("update", 2), ("insert", 1))

#: One W8 operation: ("get", id, None), ("update", id, value) or ("insert", 0, Row).
MixedOp = tuple[str, int, object]


@dataclass(frozen=True)
class Sizes:
    """Operation counts; ``--quick`` divides them all by :data:`QUICK_DIVISOR`."""

    single_inserts: int = 10_000
    bulk_rows: int = 10_000
    pk_gets: int = 1_000
    page_queries: int = 1_000
    updates: int = 1_000
    stream_rows: int = 200_000
    mixed_ops: int = 5_000
    page_size: int = 20
    stream_batch: int = 1_000

    def scaled(self, divisor: int) -> Sizes:
        """Smaller sizes for quick runs; page and batch sizes keep their meaning."""
        return replace(
            self,
            single_inserts=self.single_inserts // divisor,
            bulk_rows=self.bulk_rows // divisor,
            pk_gets=self.pk_gets // divisor,
            page_queries=self.page_queries // divisor,
            updates=self.updates // divisor,
            stream_rows=self.stream_rows // divisor,
            mixed_ops=self.mixed_ops // divisor,
        )


@dataclass(frozen=True)
class Workload:
    """One measured operation: key used in results, title and the unit of one op."""

    key: str
    title: str
    unit: str


WORKLOADS: tuple[Workload, ...] = (
    Workload("W1", "single insert returning pk (one transaction)", "insert"),
    Workload("W2", "bulk insert", "row"),
    Workload("W2n", "bulk insert, narrow rows (two short strings)", "row"),
    Workload("W2r", "bulk insert returning keys, narrow rows", "row"),
    Workload("W3o", "fetch all as objects / rows", "row"),
    Workload("W3d", "fetch all as dicts", "row"),
    Workload("W4", "get by primary key", "get"),
    Workload("W5", "filtered, ordered page (LIMIT 20, random offset)", "query"),
    Workload("W6", "single-field update by pk (one transaction)", "update"),
    Workload("W7", "stream rows in batches", "row"),
    Workload(
        "W8",
        f"mixed load, {W8_TASKS} tasks / {W8_THREADS} threads over a pool of {W8_POOL} "
        "(70% PK get, 20% update, 10% insert, each by itself, as each library runs one call outside a transaction)",
        "op",
    ),
)
WORKLOAD_KEYS: tuple[str, ...] = tuple(w.key for w in WORKLOADS)


def op_count(key: str, sizes: Sizes) -> int:
    """How many operations one run of workload ``key`` performs (the µs/op divisor)."""
    return {
        "W1": sizes.single_inserts,
        "W2": sizes.bulk_rows,
        "W2n": sizes.bulk_rows,
        "W2r": sizes.bulk_rows,
        "W3o": sizes.bulk_rows,
        "W3d": sizes.bulk_rows,
        "W4": sizes.pk_gets,
        "W5": sizes.page_queries,
        "W6": sizes.updates,
        "W7": sizes.stream_rows,
        "W8": sizes.mixed_ops,
    }[key]


@dataclass(frozen=True)
class Inputs:
    """Everything a contender is handed for one repeat.

    Primary keys are 1..bulk_rows because the table is emptied with an identity reset
    (TRUNCATE on servers; an empty SQLite table restarts rowids at 1) before W2.
    """

    sizes: Sizes
    insert_rows: list[Row]
    bulk_rows: list[Row]
    get_ids: list[int]
    page_offsets: list[int]
    updates: list[tuple[int, int]]
    narrow_rows: list[NarrowRow] = field(default_factory=list)
    mixed: list[MixedOp] = field(default_factory=list)
    expected_page_rows: int = field(default=0)


def make_inputs(sizes: Sizes, seed: int = 20240101) -> Inputs:
    """Build the inputs; the pk and offset draws are distinct so caches cannot help."""
    rng = random.Random(seed)
    bulk = make_rows(sizes.bulk_rows, seed + 2)
    matching = sum(1 for row in bulk if row.value < PAGE_THRESHOLD)
    last_offset = max(matching - sizes.page_size, 1)
    offsets = [rng.randrange(last_offset) for _ in range(sizes.page_queries)]
    update_ids = rng.sample(range(1, sizes.bulk_rows + 1), sizes.updates)
    return Inputs(
        sizes=sizes,
        insert_rows=make_rows(sizes.single_inserts, seed + 1),
        bulk_rows=bulk,
        get_ids=rng.sample(range(1, sizes.bulk_rows + 1), sizes.pk_gets),
        page_offsets=offsets,
        updates=[(pk, rng.randrange(VALUE_RANGE)) for pk in update_ids],
        narrow_rows=make_narrow_rows(sizes.bulk_rows, seed + 3),
        mixed=make_mixed(sizes, seed + 4),
        expected_page_rows=sizes.page_size * sizes.page_queries,
    )


def make_mixed(sizes: Sizes, seed: int) -> list[MixedOp]:
    """W8's operations in a fixed shuffled order; gets and updates hit the rows W2 wrote."""
    rng = random.Random(seed)
    kinds = [kind for kind, weight in W8_MIX for _ in range(weight)]
    inserts = iter(make_rows(sizes.mixed_ops, seed))
    ops: list[MixedOp] = []
    for _ in range(sizes.mixed_ops):
        kind = rng.choice(kinds)
        if kind == "insert":
            ops.append(("insert", 0, next(inserts)))
        elif kind == "update":
            ops.append(("update", rng.randrange(1, sizes.bulk_rows + 1), rng.randrange(VALUE_RANGE)))
        else:
            ops.append(("get", rng.randrange(1, sizes.bulk_rows + 1), None))
    return ops
