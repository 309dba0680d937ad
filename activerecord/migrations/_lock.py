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

from ..errors import MigrationLockError

log = logging.getLogger("activerecord.migrations")

# PostgreSQL has no blocking lock call with a timeout of its own (lock_timeout would also bound
# the migration's DDL), so it polls pg_try_advisory_lock, backing off up to this interval.
_MAX_POLL = 0.5


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
    deadline = time.monotonic() + timeout
    delay = 0.05
    try_lock = text("SELECT pg_try_advisory_lock(:k)")
    if conn.execute(try_lock, {"k": key}).scalar():
        return
    _waiting(name, on_wait)
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            conn.rollback()
            raise MigrationLockError(f"the migration lock {name!r} was not free within {timeout:g}s")
        time.sleep(min(delay, remaining))
        delay = min(delay * 2, _MAX_POLL)
        if conn.execute(try_lock, {"k": key}).scalar():
            return


def _mysql_acquire(conn: Connection, name: str, timeout: float, on_wait: Callable[[str], None] | None) -> None:
    if conn.execute(text("SELECT GET_LOCK(:n, 0)"), {"n": name}).scalar() == 1:
        return
    _waiting(name, on_wait)
    # GET_LOCK blocks in the server for up to the timeout (whole seconds on MariaDB).
    got = conn.execute(text("SELECT GET_LOCK(:n, :t)"), {"n": name, "t": max(1, round(timeout))}).scalar()
    if got != 1:
        conn.rollback()
        raise MigrationLockError(f"the migration lock {name!r} was not free within {timeout:g}s")
