"""Running a service: health checks with readiness and liveness endpoints, and configuration
sources that reconfigure connections live."""

from .config_sources import ConfigSource, EtcdSource, FileSource
from .endpoints import LivenessASGI, LivenessWSGI, ReadinessASGI, ReadinessWSGI
from .health import HealthReport, HealthStatus, NodeHealth, PoolUsage

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
]
