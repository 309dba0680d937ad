"""Describe the machine and software a run was measured on, for the report header."""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import os
import platform
from pathlib import Path

from bench import schema
from bench.targets import Target

# Distributions whose versions matter to the numbers, in report order.
PACKAGES = (
    "SQLAlchemy",
    "greenlet",
    "psycopg",
    "psycopg-binary",
    "PyMySQL",
    "aiosqlite",
    "asyncpg",
    "asyncmy",
    "peewee",
    "tortoise-orm",
    "activerecord",
)


def cpu_model() -> str:
    """CPU model name from /proc/cpuinfo, else whatever platform knows."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _source_tree_version(name: str) -> str:
    """Version of a package imported from a source tree (PYTHONPATH), not installed."""
    module_name = name.lower().replace("-", "_")
    if importlib.util.find_spec(module_name) is None:
        return "absent"
    version = getattr(importlib.import_module(module_name), "__version__", "?")
    return f"{version} (source tree)"


def package_versions() -> dict[str, str]:
    """Installed version of each relevant distribution ("absent" when not installed)."""
    versions: dict[str, str] = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = _source_tree_version(name)
    return versions


def server_version(target: Target) -> str:
    """The database server's own version string, or why it could not be asked."""
    try:
        return schema.server_version(target)
    except schema.SetupError as exc:
        return f"unreachable ({exc})"


def describe() -> dict[str, object]:
    """Everything the report prints about the machine and the Python side."""
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count() or 0,
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "platform": platform.platform(),
        "packages": package_versions(),
    }
