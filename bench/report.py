"""Render the results as markdown: machine, workloads, then per-backend time and ratio tables."""

from __future__ import annotations

from typing import Any

from bench import goals
from bench.contenders import BASELINE, BY_NAME
from bench.results import RunResult, Spread, baseline_of, ratios, spreads
from bench.workloads import QUICK_DIVISOR, WORKLOADS, Sizes, op_count

_BACKEND_TITLES = {
    "sqlite": "SQLite",
    "postgresql": "PostgreSQL",
    "mysql": "MySQL / MariaDB",
}


def _num(value: float) -> str:
    # Three significant digits keep the tables narrow without hiding real differences.
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _time_cell(spread: Spread | None) -> str:
    if spread is None:
        return "-"
    if spread.low == spread.high:  # one repeat: no spread to show
        return _num(spread.median)
    return f"{_num(spread.median)} ({_num(spread.low)}-{_num(spread.high)})"


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _header(cells: list[str]) -> list[str]:
    return [_row(cells), _row(["---"] * len(cells))]


def _machine_section(meta: dict[str, Any]) -> list[str]:
    info = meta["machine"]
    packages = ", ".join(f"{name} {version}" for name, version in info["packages"].items() if version != "absent")
    absent = [name for name, version in info["packages"].items() if version == "absent"]
    lines = ["## Machine", "", *_header(["", ""])]
    lines += [
        _row(["CPU", f"{info['cpu']} ({info['cores']} cores)"]),
        _row(["Python", info["python"]]),
        _row(["platform", info["platform"]]),
    ]
    lines += [_row([backend, version]) for backend, version in meta["servers"].items()]
    start, end = meta["load"]
    lines.append(
        _row(
            [
                "load average",
                f"{start:.2f} at start, {end:.2f} at end (1 min, all processes)",
            ]
        )
    )
    lines.append(_row(["packages", packages]))
    if absent:
        lines.append(_row(["not installed", ", ".join(absent)]))
    return [*lines, ""]


def _workload_section(sizes: Sizes) -> list[str]:
    lines = [
        "## Workloads",
        "",
        *_header(["key", "workload", "operations per run", "unit"]),
    ]
    for workload in WORKLOADS:
        lines.append(
            _row(
                [
                    workload.key,
                    workload.title,
                    f"{op_count(workload.key, sizes):,}",
                    workload.unit,
                ]
            )
        )
    lines += [
        "",
        (
            "Table `bench_item(id pk autoincrement, name varchar(100), value int, score float, "
            "created_at timestamp)` (`timestamptz` on PostgreSQL, `DATETIME(6)` on MariaDB), "
            f"{sizes.bulk_rows:,} rows for W3-W6; W7 reads "
            f"`bench_stream`, the same shape with {sizes.stream_rows:,} rows, in batches of "
            f"{sizes.stream_batch:,}. W5 is `value < 500 ORDER BY id LIMIT {sizes.page_size} "
            "OFFSET <random>`. W2n and W2r write `bench_narrow(id pk autoincrement, a varchar(20), "
            "b varchar(20))`, rows of two short strings. W8's gets and updates hit the rows W2 wrote."
        ),
        "",
    ]
    return lines


def _backend_section(backend: str, results: list[RunResult]) -> list[str]:
    mine = [r for r in results if r.backend == backend]
    ok = [r for r in mine if r.status == "ok"]
    keys = [w.key for w in WORKLOADS]
    lines = [f"## {_BACKEND_TITLES.get(backend, backend)}", ""]
    if ok:
        lines += [
            (
                "Median µs per operation (min-max over repeats). W7 heap: tracemalloc "
                "peak of Python allocations while streaming; W7 RSS: peak growth of the "
                "process's resident memory (median, min-max)."
            ),
            "",
        ]
        lines += _header(["contender", "mode", *keys, "W7 heap MiB", "W7 RSS MiB"])
        for result in ok:
            entry = BY_NAME[result.contender]
            cells = spreads(result)
            rss = Spread.of(result.memory_mib) if result.memory_mib else None
            heap = "-" if result.heap_mib is None else _num(result.heap_mib)
            times = [_time_cell(cells.get(key)) for key in keys]
            lines.append(_row([entry.label, entry.mode, *times, heap, _time_cell(rss)]))
        lines += [
            "",
            "Ratio to the baseline of the same mode and run (below 1.00 = faster).",
            "",
        ]
        lines += _header(["contender", "baseline", *keys])
        for result in ok:
            entry = BY_NAME[result.contender]
            base = baseline_of(result, results)
            factors = ratios(result, results)
            lines.append(
                _row(
                    [
                        entry.label,
                        BY_NAME[BASELINE[entry.mode]].label if base else "not run",
                        *(f"{factors[key]:.2f}" if key in factors else "-" for key in keys),
                    ]
                )
            )
        lines.append("")
    missing = [r for r in mine if r.status != "ok"]
    if missing:
        lines += ["Not measured:", ""]
        lines += [f"- {BY_NAME[r.contender].label}: **{r.status}** — {r.reason}" for r in missing]
        lines.append("")
    return lines


_METHOD = """## Method

- Every contender runs in Python processes of its own, on a table of its own
  (`bench_item_<contender>`, the same DDL for all, created by the runner; on SQLite also a file
  of its own). The contenders of a backend take turns in rounds (A B C, B C A, ...), so drifting
  machine load is shared by all; each round starts new processes, so a median is one over
  processes. A round's processes make their untimed warm-up pass (small sizes: caches, compiled
  statements, pooled connections) all at once, then one timed pass each, one process at a time;
  the tracemalloc pass of the last round (W7 heap, which counts only the process's own
  allocations) runs in all of them at once too.
- Statements are built anew on every call, as application code does; what a library caches by
  itself (compiled SQL, prepared statements) counts. Core's W1 passes the row as parameters,
  `conn.execute(insert(t), row)`: `insert(t).values(**row)` costs about 3.5x more per insert.
- W1 and W6 run in one transaction each. W6 is the query-level update by primary key in every
  library (`UPDATE ... WHERE id = ?`), no load.
- Connection scope: SQLAlchemy Core holds one connection for each whole workload
  (`with engine.connect()` / `engine.begin()`). activerecord holds one the same way through its
  public API: W4 and W5 run inside `with Item.transaction():` (`async with Item.atransaction():`),
  exactly where Core holds its connection. Outside a transaction each activerecord call checks a
  pooled connection out and back in, which on psycopg and PyMySQL adds a BEGIN/ROLLBACK round
  trip per read: that is the cost of a standalone read, not of the library's per-call work.
- W3d builds plain dicts of typed column values: the driver's dict rows where it has them,
  `dict(mapping)` for SQLAlchemy, `.dicts()` / `.values()` for Peewee / Tortoise, `Query.values()`
  for activerecord (`to_dict()` also turns datetimes into ISO strings, more work than the others do).
- activerecord keeps all its work on: every written row is validated, every datetime read comes
  back timezone-aware (UTC), every loaded record keeps the snapshot its dirty tracking compares to.
- activerecord only has timezone-aware datetime fields, so its input rows carry UTC-aware
  timestamps (converted before the timing). The columns are the same for every contender:
  `timestamptz` on PostgreSQL (the type for an instant there, which activerecord's own tables
  use; the drivers return it aware), naive `TIMESTAMP` text on SQLite and `DATETIME(6)` on
  MariaDB, which activerecord converts to aware UTC values on every read.
- W2 is a bulk load that wants no objects back: Core's `conn.execute(insert(t), rows)`, the ORM's
  bulk `session.execute(insert(Item), rows)`, Peewee's `insert_many`, Tortoise's `bulk_create`,
  and activerecord's `Model.bulk_insert(rows)`, which validates every row as `save()` would and
  returns the count, no records and no keys, as Core does. (`insert_many`, which returns the
  records with their new keys, sends `INSERT ... RETURNING` and is not what W2 measures.)
- Every result is checked (ids returned, rows fetched, pages filled, rows streamed), so a
  contender cannot win by doing less; `gc.collect()` runs before each workload, untimed.
- W7 memory, two views. *Heap*: on an extra untimed pass, tracemalloc's peak of the Python
  allocations made while the first 3 batches arrive: a library that buffers the whole result
  has fetched it by then, a streaming one has reached its steady state; it does not see C
  buffers (libpq). *RSS*: on the timed passes, the kernel's resident-set high-water mark is
  reset just before W7 (`/proc/self/clear_refs`) and its growth reported; it sees everything,
  but memory freed earlier and still held by the allocator is reused without growth, so values
  near zero mean "no more than was already there".
- W2n is W2 on rows of two short strings, where per-row validation and value building are not
  diluted by wide rows or timestamp conversion. W2r loads the same rows and wants their keys
  back: activerecord's `Model.insert_many(rows)` (records with their keys, in row order) against
  Core's `insert(t).returning(t.c.id)` executemany, the SQLAlchemy ORM's bulk insert with
  RETURNING; Peewee and Tortoise have no bulk insert that returns keys on every backend and skip it.
- W8 is a service's load: 70% PK gets, 20% single-row updates, 10% inserts, each operation by
  itself (no transaction around it), from 16 threads (sync) or 100 asyncio tasks (async) sharing
  a pool of 10 connections per contender (Peewee's `playhouse.pool`, Tortoise's pool; SQLite
  under Tortoise has one connection). An untimed burst fills the pool first. The W8 cell is µs
  per operation of wall time (the inverse of throughput); the W8 table gives ops/s and the
  latency of single operations, from the start of the call to its end, the wait for a pooled
  connection included, so an unfair hand-off shows as the worst operation. An async operation
  starts with one pass through the event loop, counted in its latency, as a service's request
  starts from the loop and waits there for its turn: a library whose operations never yield
  would otherwise have one task run operation after operation while the others' waits went
  unmeasured.
"""


_DRIVERS = """## MySQL/MariaDB drivers

Measured before the suite was written (`python -m bench.mysql_drivers`, full tables in
`bench/mysql-driver-choice.md`), through SQLAlchemy Core on MariaDB:

- **Sync: PyMySQL.** The only candidate that installs everywhere (pure Python; `mysqlclient`
  needs the MySQL/MariaDB client headers).
- **Async: asyncmy.** Its row decoding is compiled: fetching is 5-7x faster per row than
  aiomysql (about 2.5 vs 15-18 µs), the one difference far outside the noise; single-statement
  round trips (insert, pk get) tie within the noise of a shared machine. Tortoise ORM also
  prefers asyncmy, so a project using both needs one driver.
"""

_HOW_TO_RUN = f"""## How to run

    nox -s bench                          # installs the contenders' libraries, then the full suite
    python -m bench                       # the same in an environment that has them
    python -m bench --quick               # sizes / {QUICK_DIVISOR}: before and after every change of a hot path
    python -m bench --quick --repeats 3   # ... with medians over 3 repeats
    python -m bench --backend sqlite --contender activerecord,peewee --repeats 5
    python -m bench.mysql_drivers         # the MySQL driver comparison

Servers: `BENCH_POSTGRESQL_URL` (default `postgresql://postgres@127.0.0.1:5432/bench_ar`) and
`BENCH_MYSQL_URL` (default `mysql://root@127.0.0.1:3306/bench_ar`); the databases are created
when missing. The report (this file), `docs/benchmarks.png` and `docs/benchmarks.json` are
written by each run (`--output` picks another path). An unreachable server or a missing library
marks its contenders as not measured and the run goes on.
"""

_LIMITS = """## What limits activerecord where a target is missed

Profiled with cProfile on the workloads' own calls; the targets table above says which are met
in this run. Ratios near a target (1.1x for W2, 0.8x for MariaDB's W4) move across it from run to
run with the machine's load: the min-max columns show the spread.

- **Async single statements against Tortoise ORM (W1).** Each statement runs through
  SQLAlchemy's `Connection.execute` (the compiled-statement cache, an execution context, a
  result), which is what keeps SQLAlchemy's events, error wrapping and invalidation of broken
  connections. Measured on asyncpg with the same INSERT ... RETURNING in one transaction: the
  raw driver 78 µs, SQLAlchemy's adapted DB-API cursor 81 µs, `Connection.execute` 115 µs,
  `Item.acreate` 128 µs; Tortoise calls the driver directly and adds about 30 µs to it. On SQLite
  the gap is smaller (13 µs: both make one trip to aiosqlite's thread). Beating Tortoise here
  would mean sending statements to the driver outside `Connection.execute`, which the
  architecture rules out (all I/O on a `Connection`). (An explicit `RETURNING` read with
  `scalar_one()` instead of `inserted_primary_key` saves about 4 µs of the 34; not taken.)
- **W2 bulk insert** sends the same INSERT as Core; each row is validated first (one generated
  loop per model, defaults and timestamps filled in, every check one expression; a row that is
  a dict of exactly the model's columns with nothing to fill in is not copied). The INSERT is
  compiled once per model and database and its rows go to the driver as the driver takes them
  (tuples, or dicts on psycopg), each value through its column type's processor, by
  `Connection.exec_driver_sql`: SQLAlchemy's own executemany runs `construct_params` for every
  row, which was most of Core's time on narrow rows (SQLite, 10,000 rows of two short strings,
  paired in one process: Core 2.5 µs a row, the same rows as driver tuples 1.2, activerecord
  1.7 with its validation). W2n is where this shows most.
- **W2r** builds a record per row, as the contenders' ORMs do; plain dict rows take the bulk
  path and their records are made after the insert as loaded records are (about 0.5 µs a row;
  a record per row first, with its own validation, cost about 5).
- **W8** runs each operation outside a transaction: a single statement is one round trip
  (autocommit), and a released connection goes to the longest waiter, which keeps the worst
  operation within a few times the p99 where SQLAlchemy's pool let some callers wait seconds.
  On SQLite, the connections of one process take turns at the file's gate (writers in arrival
  order, a commit after the reads under way) instead of sleeping in SQLite's busy handler, which
  polls in steps of up to 100 ms; Tortoise holds a single connection there, which serializes its
  operations without that contention; Core and Peewee meet in the busy handler. Async SQLite is
  where W8 is closest to Tortoise: the event loop is the bottleneck (CPU time per operation equals
  wall time), and with a thread per connection, as aiosqlite gives, ten driver threads contended
  with the loop for two cores and the GIL (4,000 involuntary context switches per 5,000
  operations, against about 50 with one thread). The connections of one file now share a few
  threads (one runs the calls, one watches for a call stalled 50 ms; see Transactions): measured
  outside the suite, same load, ten threads 3,960-4,060 ops/s, shared threads 4,210-4,880 with
  10-15% less CPU per operation, Tortoise (one connection) 4,100-4,490. Even so, a statement
  awaited on that thread took hundreds of µs for tens of work: the thread needs the GIL after
  each SQLite step and waits for the busy loop to block or for the 5 ms switch interval.
  Tortoise's single connection lets one call run at a time while the loop sits idle, so its
  thread gets the GIL at once. Now a statement whose recent runs averaged under 2 ms is waited
  for in place by the loop's thread (up to 4 ms, the GIL released). With every operation
  starting from the loop (the harness since this round), full-size W8 in one process: in place
  1,040-1,400 ops/s in 12 passes, every statement awaited 1,030-1,180 in 6, Tortoise 890-1,290
  in 6; CPU time per operation 510-650 µs against Tortoise's 540-770. The 1.55x over Tortoise
  measured in the previous round came from a harness whose tasks ran their next operation
  without passing through the loop, where operations that never yield ran back to back. Each wait for
  a connection and each statement's read bound is an entry in a per-loop deadline table, not an
  `asyncio.timeout` (which cost 7% of MariaDB's async W8). On MariaDB, async W8 is bound by the
  client's CPU for both (the loop idle 1% of the time) and the two are level: in paired runs in
  one process activerecord used 177-232 µs of CPU an operation, Tortoise 173-185, with the same
  statements reaching the server (its status counters). Yet activerecord runs fewer
  instructions (callgrind, the same operations one after another: 485k a PK get and 433k an
  update, against Tortoise's 757k and 702k); what it spends beyond the driver is SQLAlchemy's
  checkout, execution context and result per statement and the greenlet switches around each
  wait, whose cost in cache misses and stack copies an instruction count does not show. In
  separate processes taking turns, as this suite runs them (eight rounds), activerecord's
  throughput was 0.80-1.13x Tortoise's, median 0.98x: this suite's figure for the cell moves
  across 1.0 from run to run. A statement precompiled per model would not change that:
  `Connection.exec_driver_sql` with the SQL text ready costs what `Connection.execute` of the
  cached SELECT costs (30 µs against the driver cursor's 4, sync SQLite, the same statement), and
  SQLAlchemy's pool with its unfair hand-off (a p99 of 1.8 s here, as Tortoise's) measured the
  same throughput as the fair one within the spread (0.80-1.27x in six alternating rounds).
  Neither did tasks waiting for a connection before they enter a greenlet (so that at most ten
  greenlets are alive, not a hundred): 3,010-3,740 ops/s against 2,390-3,720 in three
  alternating pairs of processes; nor statements without their read bound; nor skipping two of
  the three trips through the event loop a statement makes (asyncmy's cursor enter and close,
  which end without I/O): 280-337 µs of CPU a sequential PK get either way.
- **W7 stream time** is not a target (its memory is): it builds SQLAlchemy rows per batch and a
  record from each.
- **Run-to-run spread on this machine.** On this two-core virtual machine a process's speed
  varies by more than the targets' margins: in two SQLite runs five minutes apart, each with one
  process per contender, activerecord's sync W3o measured 1.80x and 0.71x Core, W2 1.49x and
  0.57x, with each run's own min-max narrow. Every round therefore runs in new processes, and a
  median is one over processes; the min-max shows the spread that remains. CPU-time and
  instruction counts of the same loops in one process (the way hot paths are compared before a
  change lands) put SQLite's sync W1 at 1.06-1.13x Core and W3o at 1.24-1.28x.

What was changed to get here: `find_by_id()` keeps its key and its terminals run a statement
prebuilt per model; the INSERT of each table is built once; routing checks skip their scope scan
when no scope is open; `bulk_insert()` validates rows without building records and sends no
RETURNING; field checks are generated per model; naive datetimes become aware through
`datetime.combine` (a third of `replace(tzinfo=...)`); SQLite's BEGIN comes from the dialect's
`do_begin` instead of a connection event, so SQLAlchemy dispatches no execute events; async
SQLite makes one thread trip per statement; PyMySQL and asyncmy read and write `DATETIME` as UTC
through converters given to the driver (PyMySQL's own are Python: about 2 µs to read a value,
1.5 µs to write one), and FLOAT/DOUBLE values are taken as the driver decodes them. Records,
`values()` dicts and `pluck()` tuples are built from the driver's rows (or SQLAlchemy's processed
tuples) instead of `Row` objects (about 0.2 µs a row); field names are not class attributes, so
CPython's specialized attribute stores apply to records (the loader went from 0.20 to 0.12 µs a
row); async operations run in reused greenlets (a new greenlet maps a fresh frame-stack chunk:
about 20 µs per statement with asyncpg); on MariaDB, bulk writes go out 1,000 rows per statement
(reads on the connection after one 650 KB INSERT took 0.80-0.84 µs a row, after pages
0.46-0.55).
"""


def _mixed_section(results: list[RunResult]) -> list[str]:
    """W8 per backend and contender: throughput and the latency of single operations."""
    measured = [r for r in results if r.status == "ok" and r.mixed]
    if not measured:
        return []
    lines = [
        "## W8: throughput under concurrency",
        "",
        "Medians over the repeats. Latency counts from an operation's start to its end, its wait "
        "for a pooled connection included.",
        "",
        *_header(["backend", "contender", "mode", "ops/s", "p50 ms", "p99 ms", "worst ms"]),
    ]
    for result in measured:
        entry = BY_NAME[result.contender]
        figures = [goals.mixed_median(result, key) or 0.0 for key in ("ops_s", "p50_ms", "p99_ms", "worst_ms")]
        lines.append(_row([result.backend, entry.label, entry.mode, *(_num(v) for v in figures)]))
    return [*lines, ""]


def _targets_section(results: list[RunResult]) -> list[str]:
    found = goals.checks(results)
    if not found:
        return []
    lines = [
        "## Targets",
        "",
        "Medians of this run. Sync: ratio to SQLAlchemy Core; async: to SQLAlchemy async Core.",
        "",
        *_header(["backend", "contender", "workload", "target", "measured", "met"]),
    ]
    for check in found:
        met = "-" if check.met is None else ("yes" if check.met else "**no**")
        label = BY_NAME[check.contender].label
        lines.append(_row([check.backend, label, check.workload, check.target, check.value, met]))
    return [*lines, ""]


def _notes_section(results: list[RunResult]) -> list[str]:
    streaming: dict[str, str] = {}
    for result in results:
        if result.status == "ok" and result.streaming:
            streaming.setdefault(result.contender, result.streaming)
    lines = ["## How each contender streams W7", ""]
    lines += [f"- {BY_NAME[name].label}: {how}" for name, how in streaming.items()]
    return [*lines, "", _METHOD, _DRIVERS, _HOW_TO_RUN, _LIMITS]


def render(results: list[RunResult], meta: dict[str, Any], chart_name: str) -> str:
    """The whole markdown document."""
    sizes = Sizes(**meta["sizes"])
    mode = f"quick mode (sizes ÷{QUICK_DIVISOR})" if meta["quick"] else "full sizes"
    lines = [
        "# Benchmarks",
        "",
        (
            f"Generated by `{meta['command']}` on {meta['date']}: {mode}, "
            f"{meta['repeats']} timed repeat(s) per contender; the run took "
            f"{meta['seconds']:.0f} s."
        ),
        "",
        (
            "Lower is better. Ratios divide a contender's median by the median of SQLAlchemy Core "
            "(sync contenders) or SQLAlchemy async Core (async contenders) measured in the same run."
        ),
        "",
        f"![ratio to SQLAlchemy Core per workload]({chart_name})",
        "",
    ]
    lines += _machine_section(meta)
    lines += _workload_section(sizes)
    for backend in dict.fromkeys(r.backend for r in results):
        lines += _backend_section(backend, results)
    lines += _mixed_section(results)
    lines += _targets_section(results)
    lines += _notes_section(results)
    return "\n".join(lines)
