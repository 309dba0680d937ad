"""PostgreSQL: psycopg (sync) and asyncpg (async), with WAL positions, advisory locks and JSONB."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

from sqlalchemy import Connection, Table, text
from sqlalchemy.dialects import postgresql as sa_postgresql
from sqlalchemy.engine import URL, Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.types import TypeEngine

from ..errors import ConfigurationError, MigrationLockError
from .base import Backend, ReplicaStatus, aware_utc_reader
from .faults import Classified, classify_postgresql

#: PostgreSQL's type OID of ``timestamptz``: what psycopg and asyncpg report as a result column's type.
TIMESTAMPTZ_OID = 1184

# Positions as numbers (bytes since 0/0), which order like the LSNs they stand for.
_POSITION = text("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn")
_STATUS = text(
    "SELECT pg_is_in_recovery(), "
    "(CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END) - '0/0'::pg_lsn, "
    "CASE WHEN NOT pg_is_in_recovery() OR pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0 "
    "ELSE COALESCE(EXTRACT(EPOCH FROM clock_timestamp() - pg_last_xact_replay_timestamp()), 0) END"
)


#: The node setting for pgbouncer in transaction pooling mode (``engine.config.PGBOUNCER``).
PGBOUNCER = "pgbouncer"
#: The execution option that marks an engine's connections as going through pgbouncer.
THROUGH_PGBOUNCER = "activerecord_pgbouncer"
# The driver arguments that keep server-side prepared statements off, with their "off" value:
# asyncpg's statement cache, SQLAlchemy's asyncpg prepared statement cache, psycopg's automatic
# preparation. Any other value turns them back on.
_PREPARES_NOTHING: dict[str, int | None] = {
    "statement_cache_size": 0,
    "prepared_statement_cache_size": 0,
    "prepare_threshold": None,
}


def _is_off(value: Any, off: int | None) -> bool:
    if off is None:
        return value is None
    return str(value).strip() == str(off)


def _statement_name() -> str:
    # SQLAlchemy's asyncpg dialect prepares every statement under a name. asyncpg numbers them
    # per connection (__asyncpg_stmt_1__, ...): behind pgbouncer two clients' statements would
    # meet under one name on a shared server connection.
    return f"__asyncpg_{uuid.uuid4().hex}__"


def _lock_key(name: str) -> int:
    # pg_advisory_lock takes a signed 64-bit key.
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


class PostgreSQL(Backend):
    """PostgreSQL through psycopg 3 and asyncpg."""

    name: ClassVar[str] = "postgresql"
    aliases: ClassVar[tuple[str, ...]] = ("postgres", "pgsql")
    sync_driver: ClassVar[str] = "psycopg"
    async_driver: ClassVar[str] = "asyncpg"
    async_drivers: ClassVar[frozenset[str]] = frozenset({"asyncpg", "psycopg_async"})
    default_port: ClassVar[int | None] = 5432
    keeps_time_zone: ClassVar[bool] = True
    nulls_sort_large: ClassVar[bool] = True
    has_write_positions: ClassVar[bool] = True

    def skips_locked_rows(self, dialect: Dialect) -> bool:
        return True  # since 9.5

    def classify_error(self, error: BaseException, is_disconnect: bool) -> Classified:
        return classify_postgresql(error, is_disconnect)

    def several_hosts(self, connection: str, url: URL, hosts: Sequence[tuple[str, int | None]]) -> URL:
        # libpq-style multi-host, which psycopg and asyncpg both read from SQLAlchemy's URL:
        # they try the hosts in order and keep the first that matches target_session_attrs.
        # Without one, a node of several hosts wants the one that takes writes.
        listed = tuple(f"{host}:{port or self.default_port}" for host, port in hosts)
        query = {"host": listed, "target_session_attrs": url.query.get("target_session_attrs", "read-write")}
        return url.set(host=None, port=None).update_query_dict(query)

    def behind_pgbouncer(self, connection: str, url: URL, options: Mapping[str, Any]) -> None:
        """pgbouncer in transaction pooling mode gives each transaction any server connection: a
        statement prepared in one is unknown in the next. A node behind it must not turn the
        drivers' server-side prepared statements back on."""
        given = {**url.query, **(options.get("connect_args") or {})}
        for key, off in _PREPARES_NOTHING.items():
            if key in given and not _is_off(given[key], off):
                raise ConfigurationError(
                    f"connection {connection!r}: {key}={given[key]!r} prepares statements on the server, which "
                    f"pgbouncer in transaction mode cannot serve; remove it ('pgbouncer': true turns them off)"
                )

    def engine_options(self, url: URL, options: Mapping[str, Any]) -> dict[str, Any]:
        result = dict(options)
        if not result.pop(PGBOUNCER, False):
            return result
        args = dict(result.get("connect_args") or {})
        driver = url.get_driver_name()
        if driver == "asyncpg":
            args.setdefault("statement_cache_size", 0)
            args.setdefault("prepared_statement_cache_size", 0)
            args.setdefault("prepared_statement_name_func", _statement_name)
        elif driver.startswith("psycopg"):
            args.setdefault("prepare_threshold", None)
        result["connect_args"] = args
        # Marks the engine's connections: the migration lock (session state) refuses them.
        result["execution_options"] = {**(result.get("execution_options") or {}), THROUGH_PGBOUNCER: True}
        return result

    def json_type(self) -> TypeEngine[Any] | None:
        # JSONB indexes and compares, which JSON does not.
        return sa_postgresql.JSONB(none_as_null=True)

    def datetime_bind_processor(
        self, dialect: Dialect, inner: Callable[[Any], Any] | None
    ) -> Callable[[Any], Any] | None:
        return inner  # timestamptz takes aware values as they are

    def datetime_result_processor(self, dialect: Dialect, coltype: Any, inner: Callable[[Any], Any] | None) -> Any:
        if coltype == TIMESTAMPTZ_OID and inner is None:
            return None  # the driver returns timestamptz values aware: nothing to do per value
        return aware_utc_reader(inner)

    def upsert(self, table: Table, conflict: Sequence[str], update: Sequence[str], pk: str) -> Any:
        stmt = sa_postgresql.insert(table)
        keys = [table.c[c] for c in conflict]
        if not update:
            return stmt.on_conflict_do_nothing(index_elements=keys)
        return stmt.on_conflict_do_update(index_elements=keys, set_={c: stmt.excluded[c] for c in update})

    def acquire_migration_lock(self, conn: Connection, name: str, timeout: float, waiting: Callable[[], None]) -> bool:
        """A session-level ``pg_advisory_lock``: it survives the migration's own commits and
        vanishes with the session if the process dies."""
        if conn.get_execution_options().get(THROUGH_PGBOUNCER):
            # pgbouncer in transaction mode hands the session back after each transaction: the
            # lock would be held by whichever client gets that server connection next.
            raise ConfigurationError(
                "migrations cannot run through pgbouncer in transaction mode (the migration lock is "
                "session state): configure the connection without 'pgbouncer', to PostgreSQL directly"
            )
        key = _lock_key(name)
        if conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar():
            return True
        waiting()
        # Wait in the server, bounded by lock_timeout (which covers advisory locks). The setting
        # is transactional: restored below on success, undone by the rollback on timeout.
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
        return True

    def release_migration_lock(self, conn: Connection, name: str) -> None:
        conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _lock_key(name)})

    def write_position(self, conn: Connection) -> int | None:
        """The primary's current WAL position (LSN)."""
        return int(conn.execute(_POSITION).scalar_one())

    def replica_status(self, conn: Connection) -> ReplicaStatus | None:
        recovering, position, lag = conn.execute(_STATUS).one()
        return ReplicaStatus(float(lag), None if position is None else int(position), bool(recovering))


BACKEND = PostgreSQL()
