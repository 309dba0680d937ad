"""The migration lock: one upgrade or downgrade at a time per database and version table.

Each backend takes its own session-level lock (`Backend.acquire_migration_lock`: PostgreSQL a
``pg_advisory_lock``, MySQL/MariaDB a named ``GET_LOCK``), held by the migrating connection's
session, so it survives the commits of the migration itself and vanishes with the session if
the process dies. SQLite has no such lock: its own write lock serializes writers to the file,
and a file database is not shared by deploys on two hosts.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy import Connection

from ..dialects import backend_for

log = logging.getLogger("activerecord.migrations")


def lock_name(database: str, version_table: str) -> str:
    """The lock's name: unique per database and version table, at most 64 characters (MySQL's limit)."""
    name = f"activerecord_migrate:{database}:{version_table}"
    if len(name) > 64:
        name = "activerecord_migrate:" + hashlib.sha256(name.encode()).hexdigest()[:40]
    return name


@contextmanager
def migration_lock(
    conn: Connection,
    version_table: str,
    timeout: float,
    on_wait: Callable[[str], None] | None = None,
) -> Iterator[float]:
    """Hold the migration lock on ``conn``'s session; yields the seconds spent waiting for it.

    Raises `MigrationLockError` when another session keeps it longer than ``timeout`` seconds.
    ``conn`` is left outside any transaction on entry, so Alembic begins its own.
    """
    backend = backend_for(conn.dialect)
    name = lock_name(conn.engine.url.database or "", version_table)
    started = time.monotonic()
    if not backend.acquire_migration_lock(conn, name, timeout, lambda: _waiting(name, on_wait)):
        yield 0.0
        return
    waited = time.monotonic() - started
    conn.commit()
    try:
        yield waited
    finally:
        if conn.in_transaction():
            conn.rollback()
        backend.release_migration_lock(conn, name)
        conn.commit()


def _waiting(name: str, on_wait: Callable[[str], None] | None) -> None:
    message = f"waiting for the migration lock {name!r}, held by another migration"
    log.info(message)
    if on_wait is not None:
        on_wait(message)
