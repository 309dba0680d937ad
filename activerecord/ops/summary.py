"""A short, readable summary of the metrics recorded so far: for a demo's or a job's last lines,
or a log line at shutdown (a service's dashboards read the exporters instead)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from . import metrics as _m


def _quantile(buckets: list[tuple[float, int]], q: float) -> str:
    """The bucket bound at or below which a share ``q`` of the observations lies ("<= 5 ms")."""
    total = buckets[-1][1] if buckets else 0
    for bound, below in buckets:
        if below >= q * total:
            return f"<= {bound * 1000:g} ms" if bound != float("inf") else f"> {buckets[-2][0]:g} s"
    return "n/a"


def _merged(histograms: Iterable[_m.Histogram]) -> list[tuple[float, int]]:
    merged: list[tuple[float, int]] = []
    for histogram in histograms:
        buckets = histogram.cumulative()
        merged = buckets if not merged else [(b, n + m) for (b, n), (_, m) in zip(merged, buckets, strict=True)]
    return merged


def _by(counts: Counter[str]) -> str:
    return ", ".join(f"{key} {int(n)}" for key, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def summary(metrics: _m.Metrics) -> str:
    """The metrics in a few lines: statements by connection and operation with their p50/p99
    duration (as the bucket bounds that hold them), errors by class, rows, pool use, and replica
    skips and fallbacks where there were any."""
    families = {family.name: family for family in metrics.collect()}
    durations = families[_m.DURATION.name].series
    histograms = [h for h in durations.values() if isinstance(h, _m.Histogram)]
    per_connection: dict[str, Counter[str]] = {}
    for labels, histogram in durations.items():
        assert isinstance(histogram, _m.Histogram)
        found = dict(labels)
        operations = per_connection.setdefault(found.get("activerecord.connection") or "(unnamed)", Counter())
        operations[found.get("db.operation.name", "?")] += histogram.count
    buckets = _merged(histograms)
    total = buckets[-1][1] if buckets else 0
    lines = [
        f"statements: {total}" + (f" (p50 {_quantile(buckets, 0.5)}, p99 {_quantile(buckets, 0.99)})" if total else "")
    ]
    lines += [f"  {name}: {_by(operations)}" for name, operations in sorted(per_connection.items())]

    def counted(spec: _m.Spec, label: str) -> Counter[str]:
        counts: Counter[str] = Counter()
        for labels, value in families[spec.name].series.items():
            if not isinstance(value, _m.Histogram) and value:
                counts[dict(labels).get(label, "?")] += int(value)
        return counts

    errors = counted(_m.ERRORS, "error.type")
    lines.append(f"errors: {_by(errors)}" if errors else "errors: none")
    lines.append(f"rows affected or counted: {int(sum(counted(_m.ROWS, 'db.operation.name').values()))}")
    waits = [h for h in families[_m.WAIT.name].series.values() if isinstance(h, _m.Histogram)]
    wait_buckets = _merged(waits)
    checkouts = wait_buckets[-1][1] if wait_buckets else 0
    in_use = counted(_m.CONNECTIONS, "state")
    lines.append(
        f"pools: {checkouts} checkouts"
        + (f" (wait p99 {_quantile(wait_buckets, 0.99)})" if checkouts else "")
        + f"; now {int(in_use['used'])} in use, {int(in_use['idle'])} idle"
    )
    skips, fallbacks = counted(_m.SKIPS, "reason"), counted(_m.FALLBACKS, "reason")
    if skips or fallbacks:
        lines.append(
            f"replicas: skipped {_by(skips) or 'never'}; reads sent to the primary {_by(fallbacks) or 'never'}"
        )
    return "\n".join(lines)
