"""Running a service: configuration sources that reconfigure connections live."""

from .config_sources import ConfigSource, EtcdSource, FileSource

__all__ = ["ConfigSource", "EtcdSource", "FileSource"]
