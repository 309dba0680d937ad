"""Running a service: configuration sources that reconfigure connections live, metrics and tracing."""

from .config_sources import ConfigSource, EtcdSource, FileSource
from .telemetry import current_metrics, instrument, uninstrument

__all__ = ["ConfigSource", "EtcdSource", "FileSource", "current_metrics", "instrument", "uninstrument"]
