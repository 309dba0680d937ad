"""The migration lock: one upgrade or downgrade at a time per database and version table.

PostgreSQL takes a session-level ``pg_advisory_lock``, MySQL/MariaDB a named ``GET_LOCK``; both
are held by the migrating connection's session, so they survive the commits of the migration
itself and vanish with the session if the process dies. SQLite has no such lock: its own write
lock serializes writers to the file, and a file database is not shared by deploys on two hosts.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError

from ..errors import MigrationLockError

log = logging.getLogger("activerecord.migrations")


def lock_name(database: str, version_table: str) -> str:
    """The lock's name: unique per database and version table, at most 64 characters (MySQL's limit)."""
    name = f"activerecord_migrate:{database}:{version_table}"
    if len(name) > 64:
        name = "activerecord_migrate:" + hashlib.sha256(name.encode()).hexdigest()[:40]
    return name


def _pg_key(name: str) -> int:
    # pg_advisory_lock takes a signed 64-bit key.
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


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
    backend = conn.dialect.name
    if backend not in ("postgresql", "mysql", "mariadb"):
        yield 0.0
        return
    database = conn.engine.url.database or ""
    name = lock_name(database, version_table)
    started = time.monotonic()
    if backend == "postgresql":
        _pg_acquire(conn, name, timeout, on_wait)
    else:
        _mysql_acquire(conn, name, timeout, on_wait)
    waited = time.monotonic() - started
    conn.commit()
    try:
        yield waited
    finally:
        if conn.in_transaction():
            conn.rollback()
        if backend == "postgresql":
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _pg_key(name)})
        else:
            conn.execute(text("SELECT RELEASE_LOCK(:n)"), {"n": name})
        conn.commit()


def _waiting(name: str, on_wait: Callable[[str], None] | None) -> None:
    message = f"waiting for the migration lock {name!r}, held by another migration"
    log.info(message)
    if on_wait is not None:
        on_wait(message)


def _pg_acquire(conn: Connection, name: str, timeout: float, on_wait: Callable[[str], None] | None) -> None:
    key = _pg_key(name)
    if conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar():
        return
    _waiting(name, on_wait)
    # Wait in the server, bounded by lock_timeout (which covers advisory locks). The setting is
    # transactional: restored below on success, undone by the rollback on timeout.
    previous = conn.execute(text("SELECT current_setting('lock_timeout')")).scalar()
    conn.execute(text("SELECT set_config('lock_timeout', :t, false)"), {"t": f"{max(1, int(timeout * 1000))}ms"})
    try:
        conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": key})
    except DBAPIError as exc:
        conn.rollback()
        if getattr(exc.orig, "sqlstate", None) == "55P03" or "lock timeout" in str(exc):
            raise MigrationLockError(f"the migration lock {name!r} was not free within {timeout:g}s") from None
        raise
    conn.execute(text("SELECT set_config('lock_timeout', :t, false)"), {"t": previous})


def _mysql_acquire(conn: Connection, name: str, timeout: float, on_wait: Callable[[str], None] | None) -> None:
    if conn.execute(text("SELECT GET_LOCK(:n, 0)"), {"n": name}).scalar() == 1:
        return
    _waiting(name, on_wait)
    # GET_LOCK blocks in the server for up to the timeout (whole seconds on MariaDB).
    got = conn.execute(text("SELECT GET_LOCK(:n, :t)"), {"n": name, "t": max(1, round(timeout))}).scalar()
    if got != 1:
        conn.rollback()
        raise MigrationLockError(f"the migration lock {name!r} was not free within {timeout:g}s")
