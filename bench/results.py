"""Per-contender results and the statistics the report and chart derive from them."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

from bench.contenders import BASELINE, BY_NAME
from bench.targets import BackendName


@dataclass
class RunResult:
    """What one contender on one backend produced (times in µs per operation)."""

    backend: BackendName
    contender: str
    status: str  # ok | unavailable | failed
    reason: str = ""
    timings_us: dict[str, list[float]] = field(default_factory=dict)
    memory_mib: list[float] = field(default_factory=list)  # RSS growth per repeat
    heap_mib: float | None = None  # tracemalloc peak, one extra untimed pass
    streaming: str = ""
    seconds: float = 0.0
    mixed: list[dict[str, float]] = field(default_factory=list)  # W8's ops/s and latencies per repeat


@dataclass(frozen=True)
class Spread:
    """Median and min-max over the repeats."""

    median: float
    low: float
    high: float

    @classmethod
    def of(cls, values: list[float]) -> Spread:
        """Summarise one list of repeat values."""
        return cls(statistics.median(values), min(values), max(values))


def spreads(result: RunResult) -> dict[str, Spread]:
    """Workload key -> spread of µs/op."""
    return {key: Spread.of(values) for key, values in result.timings_us.items() if values}


def baseline_of(result: RunResult, results: list[RunResult]) -> RunResult | None:
    """The same backend's SQLAlchemy Core result of the contender's mode, if it ran."""
    wanted = BASELINE[BY_NAME[result.contender].mode]
    for other in results:
        if other.backend == result.backend and other.contender == wanted and other.status == "ok":
            return other
    return None


def ratios(result: RunResult, results: list[RunResult]) -> dict[str, float]:
    """Workload key -> median time / baseline median time (lower is faster)."""
    base = baseline_of(result, results)
    if base is None or result.status != "ok":
        return {}
    mine, theirs = spreads(result), spreads(base)
    return {key: mine[key].median / theirs[key].median for key in mine if key in theirs and theirs[key].median > 0}
