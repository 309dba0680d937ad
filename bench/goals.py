"""The speed targets of activerecord, checked against the ratios of one run.

Each target is a ceiling on a median ratio to the SQLAlchemy Core baseline of the same mode,
or "faster than" another contender (medians of µs per operation, same backend and run). W8
(throughput under concurrency) must beat every contender of its mode, with its worst operation
within `W8_WORST_TO_P99` times its p99.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from bench.contenders import BY_NAME
from bench.results import RunResult, ratios, spreads

#: Sync activerecord / SQLAlchemy Core, per workload.
SYNC_CEILINGS: dict[str, float] = {
    "W1": 1.3,
    "W2": 1.1,
    "W3o": 1.5,
    "W3d": 1.1,
    "W4": 0.8,
    "W5": 1.3,
    "W6": 1.3,
    # Narrow rows: bulk_insert against Core executemany, insert_many (records with their keys)
    # against Core's ``insert().returning(id)`` executemany.
    "W2n": 1.1,
    "W2r": 1.5,
}
#: Async activerecord / SQLAlchemy async Core, every timed workload but the stream (whose
#: target is its memory) and W8 (judged against every contender, below).
ASYNC_CEILING = 1.2
ASYNC_KEYS = ("W1", "W2", "W2n", "W3o", "W3d", "W4", "W5", "W6")
ASYNC_CEILINGS: dict[str, float] = {**dict.fromkeys(ASYNC_KEYS, ASYNC_CEILING), "W2r": 1.5}
#: W8: the worst operation may take at most this many times the p99.
W8_WORST_TO_P99 = 10.0
#: The ORMs activerecord must beat, by mode.
RIVALS: dict[str, tuple[str, ...]] = {
    "activerecord": ("sa-orm", "peewee"),
    "activerecord-async": ("sa-orm-async", "tortoise"),
}


@dataclass(frozen=True)
class Check:
    """One target on one backend: met, missed, or not measurable in this run."""

    backend: str
    contender: str
    workload: str
    target: str
    value: str
    met: bool | None


def _find(results: list[RunResult], backend: str, name: str) -> RunResult | None:
    for result in results:
        if result.backend == backend and result.contender == name and result.status == "ok":
            return result
    return None


def checks(results: list[RunResult]) -> list[Check]:
    """Every target, per backend that ran activerecord."""
    out: list[Check] = []
    for backend in dict.fromkeys(r.backend for r in results):
        for name, ceilings in (
            ("activerecord", SYNC_CEILINGS),
            ("activerecord-async", ASYNC_CEILINGS),
        ):
            mine = _find(results, backend, name)
            if mine is None:
                continue
            factors = ratios(mine, results)
            for key, ceiling in ceilings.items():
                value = factors.get(key)
                out.append(
                    Check(
                        backend,
                        name,
                        key,
                        f"<= {ceiling:.1f}x Core",
                        "-" if value is None else f"{value:.2f}x",
                        None if value is None else value <= ceiling,
                    )
                )
            own = spreads(mine)
            for rival_name in RIVALS[name]:
                rival = _find(results, backend, rival_name)
                if rival is None:
                    continue
                theirs = spreads(rival)
                slower = [k for k in own if k in theirs and own[k].median >= theirs[k].median]
                out.append(
                    Check(
                        backend,
                        name,
                        "all",
                        f"faster than {rival_name}",
                        "slower on " + ", ".join(slower) if slower else "faster on all",
                        not slower,
                    )
                )
            out += _mixed_checks(results, backend, mine)
    return out


def mixed_median(result: RunResult, key: str) -> float | None:
    """The median over the repeats of one W8 figure (ops_s, p50_ms, p99_ms, worst_ms)."""
    values = [m[key] for m in result.mixed if key in m]
    return statistics.median(values) if values else None


def _mixed_checks(results: list[RunResult], backend: str, mine: RunResult) -> list[Check]:
    """W8: more ops/s than every other contender of the same mode; worst op within 10x p99."""
    own = mixed_median(mine, "ops_s")
    if own is None:
        return []
    out: list[Check] = []
    mode = BY_NAME[mine.contender].mode
    for other in results:
        if other.backend != backend or other is mine or other.status != "ok" or BY_NAME[other.contender].mode != mode:
            continue
        if other.contender.startswith("activerecord"):
            continue  # activerecord itself with metrics on: a cost to report, not a contender
        theirs = mixed_median(other, "ops_s")
        if theirs is None:
            continue
        out.append(
            Check(
                backend,
                mine.contender,
                "W8",
                f"more ops/s than {other.contender}",
                f"{own:,.0f} vs {theirs:,.0f} ops/s ({own / theirs:.2f}x)",
                own > theirs,
            )
        )
    worst, p99 = mixed_median(mine, "worst_ms"), mixed_median(mine, "p99_ms")
    if worst is not None and p99:
        out.append(
            Check(
                backend,
                mine.contender,
                "W8",
                f"worst op <= {W8_WORST_TO_P99:.0f}x p99",
                f"{worst:.1f} ms = {worst / p99:.1f}x p99 ({p99:.1f} ms)",
                worst <= W8_WORST_TO_P99 * p99,
            )
        )
    return out
