"""The backends activerecord knows, behind one protocol (`base.Backend`): `backend_for` finds one.

A new backend is one module here with a `base.Backend` subclass, whose instance is passed to
`register` below (or by an application, for a backend of its own).
Importing this package imports no database driver: the drivers load when an engine is created.
"""

from __future__ import annotations

from sqlalchemy.engine import Dialect

from . import mysql, postgresql, sqlite
from .base import Backend, autocommits, begin_autocommit, begin_write

#: Every backend, by its name.
BACKENDS: dict[str, Backend] = {}
# By name and by every alias: a SQLAlchemy dialect on MariaDB is named "mariadb", for one.
_BY_NAME: dict[str, Backend] = {}

__all__ = ["BACKENDS", "Backend", "autocommits", "backend_for", "begin_autocommit", "begin_write", "register"]


def register(backend: Backend) -> None:
    """Make ``backend`` known by its name and aliases (configuration, `backend_for`)."""
    BACKENDS[backend.name] = backend
    for name in (backend.name, *backend.aliases):
        _BY_NAME[name] = backend


def backend_for(name_or_dialect: str | Dialect) -> Backend:
    """The backend named ``name_or_dialect`` (a backend name, an alias such as ``"mariadb"``,
    or a SQLAlchemy dialect); `LookupError` for a backend activerecord does not know."""
    name = name_or_dialect if isinstance(name_or_dialect, str) else name_or_dialect.name
    try:
        return _BY_NAME[name.lower()]
    except KeyError:
        raise LookupError(f"no backend {name!r}; known: {', '.join(sorted(BACKENDS))}") from None


for _backend in (sqlite.BACKEND, postgresql.BACKEND, mysql.BACKEND):
    register(_backend)
