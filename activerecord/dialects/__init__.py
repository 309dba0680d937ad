"""The backends activerecord knows, behind one protocol (`base.Backend`): `backend_for` finds one.

A new backend is one module here with a `base.Backend` subclass, registered in `BACKENDS`.
Importing this package imports no database driver: the drivers load when an engine is created.
"""

from __future__ import annotations

from sqlalchemy.engine import Dialect

from . import mysql, postgresql, sqlite
from .base import Backend, abegin_write, begin_write

#: Every backend, by its name.
BACKENDS: dict[str, Backend] = {b.name: b for b in (sqlite.BACKEND, postgresql.BACKEND, mysql.BACKEND)}
_BY_NAME: dict[str, Backend] = {alias: b for b in BACKENDS.values() for alias in (b.name, *b.aliases)}

__all__ = ["BACKENDS", "Backend", "abegin_write", "backend_for", "begin_write"]


def backend_for(name_or_dialect: str | Dialect) -> Backend:
    """The backend named ``name_or_dialect`` (a backend name, an alias such as ``"mariadb"``,
    or a SQLAlchemy dialect); `LookupError` for a backend activerecord does not know."""
    name = name_or_dialect if isinstance(name_or_dialect, str) else name_or_dialect.name
    try:
        return _BY_NAME[name.lower()]
    except KeyError:
        raise LookupError(f"no backend {name!r}; known: {', '.join(sorted(BACKENDS))}") from None
