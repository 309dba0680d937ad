"""Identical benchmark tables on every backend, created by the runner before each contender.

The runner, not the contender, owns the DDL: every library then reads and writes the very
same column types, whatever its own schema generator would have chosen.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

from bench.targets import BackendName, Target
from bench.workloads import COLUMNS, NARROW_TABLE, STREAM_TABLE, TABLE, Row, make_rows

_COLUMN_TYPES: dict[BackendName, str] = {
    # INTEGER PRIMARY KEY (no AUTOINCREMENT) is SQLite's rowid alias: what SQLAlchemy and
    # most ORMs emit, and an emptied table restarts at 1, which the pk workloads rely on.
    "sqlite": "id INTEGER PRIMARY KEY, name VARCHAR(100) NOT NULL, "
    "value INTEGER NOT NULL, score REAL NOT NULL, created_at TIMESTAMP NOT NULL",
    # TIMESTAMPTZ: PostgreSQL's type for an instant, the one a service's own tables use (and
    # activerecord's DateTimeField creates). Every contender reads it; the drivers return it
    # aware. (On a plain TIMESTAMP, making each value aware costs activerecord ~0.4 µs.)
    "postgresql": "id SERIAL PRIMARY KEY, name VARCHAR(100) NOT NULL, "
    "value INTEGER NOT NULL, score DOUBLE PRECISION NOT NULL, "
    "created_at TIMESTAMPTZ NOT NULL",
    # DATETIME(6), not TIMESTAMP: no session-time-zone conversion, no 2038 limit, and it
    # keeps the microseconds that the other backends keep.
    "mysql": "id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(100) NOT NULL, "
    "value INT NOT NULL, score DOUBLE NOT NULL, created_at DATETIME(6) NOT NULL",
}

# W2n/W2r's narrow table: two short strings, the rows where per-row overhead shows most.
_NARROW_TYPES: dict[BackendName, str] = {
    "sqlite": "id INTEGER PRIMARY KEY, a VARCHAR(20) NOT NULL, b VARCHAR(20) NOT NULL",
    "postgresql": "id SERIAL PRIMARY KEY, a VARCHAR(20) NOT NULL, b VARCHAR(20) NOT NULL",
    "mysql": "id INT AUTO_INCREMENT PRIMARY KEY, a VARCHAR(20) NOT NULL, b VARCHAR(20) NOT NULL",
}

_RESET: dict[BackendName, str] = {
    "sqlite": "DELETE FROM {table}",
    "postgresql": "TRUNCATE TABLE {table} RESTART IDENTITY",
    "mysql": "TRUNCATE TABLE {table}",
}

STREAM_SEED = 99
_MYSQL_CHUNK = 5_000


class SetupError(RuntimeError):
    """The runner could not reach or prepare a backend."""


def reset_statements(backend: BackendName) -> tuple[str, ...]:
    """SQL that empties bench_item and restarts its ids at 1; contenders run it themselves.

    A contender runs it on its own connection because, on MariaDB, a TRUNCATE from a second
    connection waits for the metadata lock of any transaction the contender left open.
    """
    return (_RESET[backend].format(table=TABLE), _RESET[backend].format(table=NARROW_TABLE))


def _ddl(backend: BackendName, table: str, columns: dict[BackendName, str] = _COLUMN_TYPES) -> list[str]:
    suffix = " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4" if backend == "mysql" else ""
    return [
        f"DROP TABLE IF EXISTS {table}",
        f"CREATE TABLE {table} ({columns[backend]}){suffix}",
    ]


def _chunks(rows: Sequence[Row], size: int) -> Iterator[Sequence[Row]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


@contextmanager
def connect(target: Target) -> Iterator[Any]:
    """A committed-on-success DB-API connection through the sync raw driver.

    Driver errors (unreachable server, bad credentials, SQL errors) become SetupError so
    that callers handle one exception type whatever the backend.
    """
    if target.backend == "sqlite":
        errors: tuple[type[Exception], ...] = (sqlite3.Error,)
    elif target.backend == "postgresql":
        import psycopg

        errors = (psycopg.Error,)
    else:
        import pymysql

        errors = (pymysql.Error,)
    try:
        conn = _open(target)
        try:
            yield conn
            conn.commit()
        finally:
            conn.close()
    except errors as exc:
        raise SetupError(f"{target.backend}: {type(exc).__name__}: {exc}") from exc


def _open(target: Target) -> Any:
    if target.backend == "sqlite":
        return sqlite3.connect(target.database)
    if target.backend == "postgresql":
        import psycopg

        return psycopg.connect(
            host=target.host,
            port=target.port,
            user=target.user,
            password=target.password or None,
            dbname=target.database,
            connect_timeout=10,
        )
    import pymysql

    return pymysql.connect(
        host=target.host,
        port=target.port,
        user=target.user,
        password=target.password,
        database=target.database or None,
        charset="utf8mb4",
        connect_timeout=10,
    )


def ensure_database(target: Target) -> None:
    """Create the server database (``bench_ar`` by default) when it does not exist yet.

    Connects to the server's maintenance database (``postgres`` / none on MariaDB), so a
    fresh server needs no manual step before the first run.
    """
    if target.backend == "sqlite":
        return
    name = target.database
    if not name.replace("_", "").isalnum():
        raise SetupError(f"{target.backend}: refusing to create database {name!r} (letters, digits, _ only)")
    admin = replace(target, database="postgres" if target.backend == "postgresql" else "")
    with connect(admin) as conn:
        cur = conn.cursor()
        if target.backend == "postgresql":
            conn.autocommit = True  # CREATE DATABASE cannot run in a transaction
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if cur.fetchone() is None:
                cur.execute(f'CREATE DATABASE "{name}"')
        else:
            cur.execute(f"CREATE DATABASE IF NOT EXISTS `{name}`")


def server_version(target: Target) -> str:
    """Version of the database server (SQLite: the linked library)."""
    if target.backend == "sqlite":
        return f"SQLite {sqlite3.sqlite_version}"
    query = "SHOW server_version" if target.backend == "postgresql" else "SELECT VERSION()"
    name = "PostgreSQL" if target.backend == "postgresql" else "MySQL/MariaDB"
    with connect(target) as conn:
        cur = conn.cursor()
        cur.execute(query)
        row = cur.fetchone()
    return f"{name} {row[0] if row else '?'}"


def recreate_item(target: Target, table: str, narrow: str) -> None:
    """Drop and create one contender's bench_item and bench_narrow tables."""
    with connect(target) as conn:
        cur = conn.cursor()
        for statement in [*_ddl(target.backend, table), *_ddl(target.backend, narrow, _NARROW_TYPES)]:
            cur.execute(statement)


def seed(target: Target, stream_rows: int) -> None:
    """Create and fill bench_stream, once per backend.

    bench_stream is only ever read, so every contender can share one copy (a file copy on
    SQLite); seeding it per contender would cost more than some contenders' whole run.
    """
    rows = make_rows(stream_rows, STREAM_SEED)
    insert_columns = ", ".join(COLUMNS)
    with connect(target) as conn:
        cur = conn.cursor()
        for statement in _ddl(target.backend, STREAM_TABLE):
            cur.execute(statement)
        if target.backend == "sqlite":
            cur.executemany(
                f"INSERT INTO {STREAM_TABLE} ({insert_columns}) VALUES (?, ?, ?, ?)",
                [(r.name, r.value, r.score, r.created_at.isoformat(" ")) for r in rows],
            )
        elif target.backend == "postgresql":
            # COPY: seeding is setup, not the subject, so take the fastest path.
            with cur.copy(f"COPY {STREAM_TABLE} ({insert_columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            for chunk in _chunks(rows, _MYSQL_CHUNK):
                cur.executemany(
                    f"INSERT INTO {STREAM_TABLE} ({insert_columns}) VALUES (%s, %s, %s, %s)",
                    list(chunk),
                )
    with connect(target) as conn:
        cur = conn.cursor()
        if target.backend == "postgresql":
            # VACUUM sets the hint bits and visibility map now; otherwise the first
            # contender to scan the fresh rows would pay for writing them.
            conn.autocommit = True
            cur.execute(f"VACUUM ANALYZE {STREAM_TABLE}")
        elif target.backend == "mysql":
            cur.execute(f"ANALYZE TABLE {STREAM_TABLE}")
            cur.fetchall()
