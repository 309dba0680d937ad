"""Where the command line learns a project's settings: flags, ``[tool.activerecord]``, environment.

Order of precedence, highest first: command-line flags; the ``[tool.activerecord.connections.NAME]``
table; the ``[tool.activerecord]`` table; built-in defaults. Connection settings come from the
``config`` module (which calls ``ConnectionManager.configure``), then ``ACTIVERECORD_URL_<NAME>`` or
``ACTIVERECORD_URL`` replace the migrated connection's URL (docs/migrations.md).
"""

from __future__ import annotations

import importlib
import os
import re
import sys
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..connections.manager import ConnectionManager
from ..errors import ConfigurationError
from ._runner import DEFAULT_DIRECTORY

_KEYS = {"config", "models", "migrations", "connection", "connections"}
_CONNECTION_KEYS = {"models", "migrations"}


@dataclass(frozen=True)
class ProjectSettings:
    """The settings of one command line run, for one connection."""

    root: Path
    connection: str
    config: str | None
    models: tuple[str, ...]
    directory: Path


def find_pyproject(start: Path) -> Path | None:
    """The nearest ``pyproject.toml`` at or above ``start``."""
    for folder in (start, *start.parents):
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            return candidate
    return None


def _table(pyproject: Path | None) -> dict[str, Any]:
    if pyproject is None:
        return {}
    try:
        with pyproject.open("rb") as f:
            data = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigurationError(f"cannot read {pyproject}: {exc}") from None
    table = data.get("tool", {}).get("activerecord", {})
    if not isinstance(table, dict):
        raise ConfigurationError(f"{pyproject}: [tool.activerecord] must be a table")
    unknown = set(table) - _KEYS
    if unknown:
        raise ConfigurationError(
            f"{pyproject}: unknown key(s) {', '.join(sorted(unknown))} in [tool.activerecord]; "
            f"allowed: {', '.join(sorted(_KEYS))}"
        )
    return table


def _modules(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, Sequence) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise ConfigurationError(f"{where}: 'models' is a module name or a list of them")


def resolve(
    *,
    connection: str | None,
    config: str | None,
    models: Sequence[str],
    directory: str | None,
    pyproject: Path | None,
    cwd: Path | None = None,
) -> ProjectSettings:
    """Merge flags (the arguments) over ``pyproject``'s ``[tool.activerecord]`` table."""
    here = cwd or Path.cwd()
    table = _table(pyproject)
    root = pyproject.parent if pyproject is not None else here
    name = connection or str(table.get("connection", "default"))
    per = table.get("connections", {}).get(name, {})
    if not isinstance(per, dict) or set(per) - _CONNECTION_KEYS:
        raise ConfigurationError(
            f"[tool.activerecord.connections.{name}] takes only {', '.join(sorted(_CONNECTION_KEYS))}"
        )
    if directory is not None:
        folder = here / directory.format(connection=name)
    else:
        template = str(per.get("migrations", table.get("migrations", DEFAULT_DIRECTORY)))
        folder = root / template.format(connection=name)
    chosen_models = tuple(models) or _modules(per.get("models", table.get("models")), "[tool.activerecord]")
    chosen_config = config or table.get("config")
    return ProjectSettings(
        root=root,
        connection=name,
        config=str(chosen_config) if chosen_config else None,
        models=chosen_models,
        directory=folder,
    )


def _import(module: str, what: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ConfigurationError(f"cannot import the {what} module {module!r}: {exc}") from exc


def env_url(connection: str, environ: Mapping[str, str] | None = None) -> str | None:
    """``ACTIVERECORD_URL_<NAME>`` (name upper-cased, other characters as ``_``), else ``ACTIVERECORD_URL``."""
    env = os.environ if environ is None else environ
    specific = "ACTIVERECORD_URL_" + re.sub(r"\W", "_", connection.upper())
    return env.get(specific) or env.get("ACTIVERECORD_URL") or None


def load(settings: ProjectSettings, *, need_connection: bool = True) -> None:
    """Import the config and models modules and apply the environment's URL; check the connection exists."""
    root = str(settings.root)
    if root not in sys.path:
        sys.path.insert(0, root)
    if settings.config:
        module_name, _, attr = settings.config.partition(":")
        module = _import(module_name, "config")
        if attr:
            target = getattr(module, attr, None)
            if target is None:
                raise ConfigurationError(f"config {settings.config!r}: {module_name} has no attribute {attr!r}")
            if isinstance(target, Mapping):
                ConnectionManager.configure(target)
            elif callable(target):
                target()
            else:
                raise ConfigurationError(f"config {settings.config!r} is neither a mapping nor a callable")
    url = env_url(settings.connection)
    if url and ConnectionManager.is_shard_group(settings.connection):
        # One URL would silently replace every shard with one database.
        raise ConfigurationError(
            f"{settings.connection!r} is a shard group: configure its shards in the config module; "
            "ACTIVERECORD_URL cannot stand for it"
        )
    if url:
        ConnectionManager.configure({settings.connection: {"url": url}})
    for module_name in settings.models:
        _import(module_name, "models")
    if need_connection and not ConnectionManager.is_configured(settings.connection):
        raise ConfigurationError(
            f"no settings for connection {settings.connection!r}: name a module that configures it "
            "(--config or `config` in [tool.activerecord]) or set ACTIVERECORD_URL"
        )
