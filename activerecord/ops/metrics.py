"""The metrics of database use, aggregated in process and read by the exporters.

Recording one statement appends its duration and rows to a list, without a lock; they are sorted
into buckets in batches, by the recording thread or when the metrics are read. Exporters
(`activerecord.ops.prometheus`, the OpenTelemetry bridge in `activerecord.ops.telemetry`) read the
aggregates when they collect, so what each exporter costs is paid at scrape time, not per
statement.
"""

from __future__ import annotations

import threading
from bisect import bisect_right
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

#: Bucket upper bounds of the statement duration histogram, in seconds (OpenTelemetry's
#: recommendation for ``db.client.operation.duration``).
DURATION_BUCKETS: tuple[float, ...] = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0)

#: Bucket upper bounds of the pool wait histogram, in seconds.
WAIT_BUCKETS: tuple[float, ...] = (0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0)

Labels = tuple[tuple[str, str], ...]
Kind = Literal["counter", "gauge", "histogram"]


#: Observations a histogram holds unsorted before the recording thread folds them into its buckets.
FOLD_AT = 128


class Histogram:
    """One series of a histogram: cumulative counts per bucket, their sum and count.

    Recording appends to ``pending`` and takes no lock (a list append is atomic): the observations
    are sorted into buckets under the lock when the series is read, or by the recording thread once
    `FOLD_AT` of them wait. ``rows``, when given, is the cell of a counter that the counts appended
    to ``pending_rows`` add to (a count below 1: none reported). Both hold floats and small ints,
    which the garbage collector does not track, so recording adds nothing to its work.
    """

    __slots__ = ("_count", "_sum", "bounds", "counts", "lock", "pending", "pending_rows", "rows")

    def __init__(self, bounds: tuple[float, ...], rows: list[float] | None = None) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one is +Inf
        self._sum = 0.0
        self._count = 0
        self.lock = threading.Lock()
        self.pending: list[float] = []
        self.pending_rows: list[int] = []
        self.rows = rows

    def observe(self, value: float, rows: int = 0) -> None:
        """Add one observation (a value equal to a bound lands in that bound's bucket) and, with a
        ``rows`` cell, the rows it reported."""
        pending = self.pending
        pending.append(value)
        if self.rows is not None:
            self.pending_rows.append(rows)
        if len(pending) >= FOLD_AT:
            self.fold()

    def fold(self) -> None:
        """Sort the pending observations into the buckets."""
        if not self.pending and not self.pending_rows:
            return
        with self.lock:
            # In bulk, so that the per-observation work is done in C: sort, then one bisect per bound.
            ordered = sorted(_take(self.pending))
            counts, below = self.counts, 0
            for index, bound in enumerate(self.bounds):
                upto = bisect_right(ordered, bound, below)  # a value equal to a bound is in its bucket
                counts[index] += upto - below
                below = upto
            counts[-1] += len(ordered) - below
            self._sum += sum(ordered)
            self._count += len(ordered)
            if self.rows is not None:
                rows = sorted(_take(self.pending_rows))
                self.rows[0] += sum(rows[bisect_right(rows, 0) :])  # below 1: no count reported

    @property
    def count(self) -> int:
        """Observations so far."""
        self.fold()
        return self._count

    @property
    def sum(self) -> float:
        """The sum of the observations so far."""
        self.fold()
        return self._sum

    def snapshot(self) -> tuple[list[tuple[float, int]], int, float]:
        """`cumulative`, `count` and `sum` read together (an exporter's buckets and count agree)."""
        self.fold()
        with self.lock:
            counts, count, total = list(self.counts), self._count, self._sum
        cumulative: list[tuple[float, int]] = []
        running = 0
        for bound, n in zip((*self.bounds, float("inf")), counts, strict=True):
            running += n
            cumulative.append((bound, running))
        return cumulative, count, total

    def cumulative(self) -> list[tuple[float, int]]:
        """``(upper bound, observations at or below it)`` per bucket, ending with +Inf."""
        return self.snapshot()[0]


def _take(pending: list[Any]) -> list[Any]:
    """Remove and return what ``pending`` holds. Slicing and deleting a list are atomic: appends
    made meanwhile by other threads stay for the next fold."""
    taken = pending[: len(pending)]
    del pending[: len(taken)]
    return taken


@dataclass
class Family:
    """One metric with all its series, as an exporter reads it."""

    name: str
    kind: Kind
    unit: str
    description: str
    series: dict[Labels, float | Histogram] = field(default_factory=dict)


@dataclass(frozen=True)
class Spec:
    """The name, kind, unit and meaning of one metric."""

    name: str
    kind: Kind
    unit: str
    description: str


DURATION = Spec("db.client.operation.duration", "histogram", "s", "Duration of database statements.")
ERRORS = Spec("activerecord.db.errors", "counter", "{error}", "Failed statements and connects, by error class.")
ROWS = Spec("activerecord.db.rows", "counter", "{row}", "Rows affected or returned, as the driver reports them.")
CONNECTIONS = Spec("db.client.connection.count", "gauge", "{connection}", "Pooled connections by state (used, idle).")
OVERFLOW = Spec("activerecord.pool.overflow", "gauge", "{connection}", "Connections open beyond the pool size.")
PENDING = Spec("db.client.connection.pending_requests", "gauge", "{request}", "Callers waiting for a connection.")
WAIT = Spec("db.client.connection.wait_time", "histogram", "s", "Time taken to obtain a connection from the pool.")
LAG = Spec("activerecord.replica.lag", "gauge", "s", "Replica lag last measured, in seconds.")
SKIPS = Spec("activerecord.replica.skips", "counter", "{skip}", "Replicas passed over for a read, by reason.")
FALLBACKS = Spec(
    "activerecord.replica.fallbacks", "counter", "{read}", "Reads sent to the primary: no replica could serve them."
)

SPECS: tuple[Spec, ...] = (DURATION, ERRORS, ROWS, CONNECTIONS, OVERFLOW, PENDING, WAIT, LAG, SKIPS, FALLBACKS)

#: What a gauge callback yields: one value per set of labels.
GaugeSource = Callable[[], Iterator[tuple[Spec, Labels, float]]]


class Metrics:
    """Every series recorded so far, plus gauges computed when read."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._histograms: dict[tuple[str, Labels], Histogram] = {}
        self._counters: dict[tuple[str, Labels], list[float]] = {}
        self._gauges: list[GaugeSource] = []

    def histogram(self, spec: Spec, labels: Labels) -> Histogram:
        """The series of histogram ``spec`` for ``labels`` (made on first use)."""
        key = (spec.name, labels)
        found = self._histograms.get(key)
        if found is None:
            bounds = DURATION_BUCKETS if spec is DURATION else WAIT_BUCKETS
            # A statement's duration series carries its rows counter: one record per statement.
            rows = self.counter(ROWS, labels) if spec is DURATION else None
            with self._lock:
                found = self._histograms.setdefault(key, Histogram(bounds, rows))
        return found

    def counter(self, spec: Spec, labels: Labels) -> list[float]:
        """The one-element cell of counter ``spec`` for ``labels``; add to it with `add`."""
        key = (spec.name, labels)
        found = self._counters.get(key)
        if found is None:
            with self._lock:
                found = self._counters.setdefault(key, [0.0])
        return found

    def add(self, cell: list[float], amount: float = 1.0) -> None:
        """Add ``amount`` to a counter cell."""
        with self._lock:
            cell[0] += amount

    def gauge_source(self, source: GaugeSource) -> None:
        """Compute gauges with ``source`` whenever the metrics are read."""
        self._gauges.append(source)

    def collect(self) -> list[Family]:
        """Every metric with its current series (gauges computed now)."""
        families = {spec.name: Family(spec.name, spec.kind, spec.unit, spec.description) for spec in SPECS}
        with self._lock:
            histograms = list(self._histograms.items())
        for _, histogram in histograms:
            histogram.fold()  # before the counters are read: a fold adds the rows it holds
        with self._lock:
            counters = [(key, cell[0]) for key, cell in self._counters.items()]
        for (name, labels), histogram in histograms:
            families[name].series[labels] = histogram
        for (name, labels), value in counters:
            families[name].series[labels] = value
        for source in list(self._gauges):
            for spec, labels, value in source():
                # A node's sync and async pools share their labels: their gauges add up.
                series = families[spec.name].series
                previous = series.get(labels, 0.0)
                assert not isinstance(previous, Histogram)
                series[labels] = previous + value
        return list(families.values())

    def value(self, name: str, labels: Mapping[str, str] | None = None) -> float:
        """The sum of counter ``name`` (or the count of histogram ``name``) over the series whose
        labels include ``labels``: a quick reading for tests, health pages and summaries."""
        total = 0.0
        for family in self.collect():
            if family.name != name:
                continue
            for key, value in family.series.items():
                if _matches(dict(key), labels or {}):
                    total += value.count if isinstance(value, Histogram) else value
        return total


def _matches(have: Mapping[str, str], want: Mapping[str, str]) -> bool:
    return all(have.get(k) == v for k, v in want.items())
