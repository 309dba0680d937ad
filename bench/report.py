"""Render the results as markdown: machine, workloads, then per-backend time and ratio tables."""

from __future__ import annotations

from typing import Any

from bench.contenders import BASELINE, BY_NAME
from bench.results import RunResult, Spread, baseline_of, ratios, spreads
from bench.workloads import WORKLOADS, Sizes, op_count

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
            f"created_at timestamp)`, {sizes.bulk_rows:,} rows for W3-W6; W7 reads "
            f"`bench_stream`, the same shape with {sizes.stream_rows:,} rows, in batches of "
            f"{sizes.stream_batch:,}. W5 is `value < 500 ORDER BY id LIMIT {sizes.page_size} "
            "OFFSET <random>`."
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

- Every contender runs in a Python process of its own per backend, on a table of its own
  (`bench_item_<contender>`, the same DDL for all, created by the runner; on SQLite also a file
  of its own). The processes of a backend take turns: one untimed warm-up pass each, then the
  timed passes in rounds (A B C, B C A, ...), so drifting machine load is shared by all.
- Statements are built anew on every call, as application code does; what a library caches by
  itself (compiled SQL, prepared statements) counts. Core's W1 passes the row as parameters,
  `conn.execute(insert(t), row)`: `insert(t).values(**row)` costs about 3.5x more per insert.
- W1 and W6 run in one transaction each; the reads run as each library reads by default. W6 is
  the query-level update by primary key in every library (`UPDATE ... WHERE id = ?`), no load.
- W3d builds plain dicts: the driver's dict rows where it has them, `dict(mapping)` for
  SQLAlchemy, `.dicts()` / `.values()` for Peewee / Tortoise, `to_dict()` for activerecord.
- activerecord only has timezone-aware datetime fields, so its input rows carry UTC-aware
  timestamps (converted before the timing); the columns are the same naive timestamps.
- Every result is checked (ids returned, rows fetched, pages filled, rows streamed), so a
  contender cannot win by doing less; `gc.collect()` runs before each workload, untimed.
- W7 memory, two views. *Heap*: on an extra untimed pass, tracemalloc's peak of the Python
  allocations made while the first 3 batches arrive: a library that buffers the whole result
  has fetched it by then, a streaming one has reached its steady state; it does not see C
  buffers (libpq). *RSS*: on the timed passes, the kernel's resident-set high-water mark is
  reset just before W7 (`/proc/self/clear_refs`) and its growth reported; it sees everything,
  but memory freed earlier and still held by the allocator is reused without growth, so values
  near zero mean "no more than was already there".
"""


def _notes_section(results: list[RunResult]) -> list[str]:
    streaming: dict[str, str] = {}
    for result in results:
        if result.status == "ok" and result.streaming:
            streaming.setdefault(result.contender, result.streaming)
    lines = ["## How each contender streams W7", ""]
    lines += [f"- {BY_NAME[name].label}: {how}" for name, how in streaming.items()]
    return [*lines, "", _METHOD]


def render(results: list[RunResult], meta: dict[str, Any], chart_name: str) -> str:
    """The whole markdown document."""
    sizes = Sizes(**meta["sizes"])
    mode = "quick mode (sizes ÷10)" if meta["quick"] else "full sizes"
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
    lines += _notes_section(results)
    return "\n".join(lines)
