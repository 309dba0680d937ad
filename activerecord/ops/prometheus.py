"""The metrics in Prometheus's format: a `prometheus_client` collector, on its own port or in an ASGI app.

The collector reads the in-process aggregates of `activerecord.ops.metrics` at scrape time, so a
scrape costs what reading them costs and a statement costs nothing more for being exported.
Names follow Prometheus's rendering of the OpenTelemetry names: dots become underscores, a unit
of seconds adds ``_seconds`` and counters end in ``_total`` (``db.client.operation.duration`` is
``db_client_operation_duration_seconds``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, make_asgi_app
from prometheus_client import start_http_server as _start_http_server
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from . import telemetry
from .metrics import Family, Histogram, Labels, Metrics


def metric_name(family: Family) -> str:
    """The Prometheus name of a metric (without ``_total``, which counters add to their sample)."""
    base = family.name.replace(".", "_")
    return f"{base}_seconds" if family.unit == "s" else base


def _labels(labels: Labels) -> dict[str, str]:
    return {key.replace(".", "_"): value for key, value in labels}


def _bound(value: float) -> str:
    return "+Inf" if math.isinf(value) else repr(value)


class ActiveRecordCollector(Collector):
    """Yields activerecord's metrics to a `prometheus_client` registry (nothing while they are off)."""

    def __init__(self, source: Callable[[], Metrics | None] = telemetry.current_metrics) -> None:
        self._source = source

    def collect(self) -> Iterator[Metric]:
        """Every metric family with its samples, read now."""
        metrics = self._source()
        if metrics is None:
            return
        for family in metrics.collect():
            name = metric_name(family)
            metric = Metric(name, family.description, family.kind)
            for labels, value in family.series.items():
                plain = _labels(labels)
                if isinstance(value, Histogram):
                    buckets, count, total = value.snapshot()
                    for bound, below in buckets:
                        metric.add_sample(f"{name}_bucket", {**plain, "le": _bound(bound)}, float(below))
                    metric.add_sample(f"{name}_count", plain, float(count))
                    metric.add_sample(f"{name}_sum", plain, total)
                elif family.kind == "counter":
                    metric.add_sample(f"{name}_total", plain, value)
                else:
                    metric.add_sample(name, plain, value)
            yield metric


def registry() -> CollectorRegistry:
    """A registry holding only activerecord's metrics."""
    reg = CollectorRegistry(auto_describe=False)
    reg.register(ActiveRecordCollector())
    return reg


def start_http_server(port: int, addr: str = "127.0.0.1", reg: CollectorRegistry | None = None) -> Any:
    """Serve ``/metrics`` on ``addr:port`` from a daemon thread; returns ``(server, thread)``.

    Call `activerecord.ops.instrument` too: until then the page is empty. ``reg``: serve this
    registry (register `ActiveRecordCollector` in it yourself) instead of one with only
    activerecord's metrics.
    """
    return _start_http_server(port, addr=addr, registry=reg if reg is not None else registry())


def asgi_app(reg: CollectorRegistry | None = None) -> Any:
    """An ASGI app answering with the metrics, to mount in FastAPI/Starlette (``app.mount("/metrics", ...)``)."""
    return make_asgi_app(registry=reg if reg is not None else registry())
