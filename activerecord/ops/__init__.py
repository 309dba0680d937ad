"""Running a service: health checks with readiness and liveness endpoints, configuration sources
that reconfigure connections live, metrics and tracing."""

from .config_sources import ConfigSource, EtcdSource, FileSource
from .endpoints import LivenessASGI, LivenessWSGI, ReadinessASGI, ReadinessWSGI
from .health import HealthReport, HealthStatus, NodeHealth, PoolUsage
from .telemetry import current_metrics, instrument, uninstrument

__all__ = [
    "ConfigSource",
    "EtcdSource",
    "FileSource",
    "HealthReport",
    "HealthStatus",
    "LivenessASGI",
    "LivenessWSGI",
    "NodeHealth",
    "PoolUsage",
    "ReadinessASGI",
    "ReadinessWSGI",
    "current_metrics",
    "instrument",
    "uninstrument",
]
