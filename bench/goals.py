"""The speed targets of activerecord, checked against the ratios of one run.

Each target is a ceiling on a median ratio to the SQLAlchemy Core baseline of the same mode,
or "faster than" another contender (medians of µs per operation, same backend and run).
"""

from __future__ import annotations

from dataclasses import dataclass

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
}
#: Async activerecord / SQLAlchemy async Core, every timed workload but the stream (whose
#: target is its memory).
ASYNC_CEILING = 1.2
ASYNC_KEYS = ("W1", "W2", "W3o", "W3d", "W4", "W5", "W6")
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
            ("activerecord-async", dict.fromkeys(ASYNC_KEYS, ASYNC_CEILING)),
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
    return out
