"""PostgreSQL: psycopg (sync) and asyncpg (async), with WAL positions, advisory locks and JSONB."""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import math
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

from sqlalchemy import Connection, Table, text
from sqlalchemy.dialects import postgresql as sa_postgresql
from sqlalchemy.dialects import registry
from sqlalchemy.engine import URL, Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.types import TypeEngine
from sqlalchemy.util import await_only

from ..errors import ConfigurationError, MigrationLockError
from .base import Backend, ReplicaStatus, aware_utc_reader
from .faults import Classified, classify_postgresql
from .options import ConnectOptions, ssl_context
from .postgresql_drivers import KEEPALIVES_ARG, READ_TIMEOUT_ARG, THROUGH_PGBOUNCER, server_session

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


registry.register("postgresql.activerecord_psycopg", "activerecord.dialects.postgresql_drivers", "PsycopgDialect")
registry.register("postgresql.activerecord_asyncpg", "activerecord.dialects.postgresql_drivers", "AsyncpgDialect")
_REGISTERED = {"psycopg": "activerecord_psycopg", "asyncpg": "activerecord_asyncpg"}


def _milliseconds(seconds: float) -> str:
    return str(max(1, round(seconds * 1000)))


def _libpq_args(url: URL, options: ConnectOptions) -> dict[str, Any]:
    """The options as libpq parameters (psycopg, sync and async)."""
    args: dict[str, Any] = {}
    if options.connect_timeout is not None:
        # Whole seconds; libpq (and psycopg after it) takes anything under 2 as 2.
        args["connect_timeout"] = max(2, math.ceil(options.connect_timeout))
    if options.statement_timeout is not None:
        given = url.query.get("options")
        setting = f"-c statement_timeout={_milliseconds(options.statement_timeout)}"
        args["options"] = setting if not given else f"{given} {setting}"
    if options.application_name is not None:
        args["application_name"] = options.application_name
    if options.ssl is not None:
        args["sslmode"] = options.ssl.mode
        for key, value in (("sslrootcert", options.ssl.ca), ("sslcert", options.ssl.cert), ("sslkey", options.ssl.key)):
            if value is not None:
                args[key] = value
    if options.keepalives is not None:
        keepalives = options.keepalives
        args.update(
            keepalives=1,
            keepalives_idle=keepalives.idle,
            keepalives_interval=keepalives.interval,
            keepalives_count=keepalives.count,
            tcp_user_timeout=keepalives.user_timeout_ms,
        )
    return args


def _asyncpg_args(options: ConnectOptions) -> dict[str, Any]:
    args: dict[str, Any] = {}
    if options.connect_timeout is not None:
        args["timeout"] = options.connect_timeout
    if options.read_timeout is not None:
        args["command_timeout"] = options.read_timeout
    settings: dict[str, str] = {}
    if options.statement_timeout is not None:
        settings["statement_timeout"] = _milliseconds(options.statement_timeout)
    if options.application_name is not None:
        settings["application_name"] = options.application_name
    if settings:
        args["server_settings"] = settings
    if options.ssl is not None:
        files = (options.ssl.ca, options.ssl.cert, options.ssl.key) != (None, None, None)
        # asyncpg reads a mode itself (with libpq's fallbacks); certificate files need a context.
        args["ssl"] = ssl_context(options.ssl) if files else options.ssl.mode
    return args


_CHANNEL = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
# Where an asyncpg connection's listener flags an arrived notification (the pool's per-connection info).
_NOTIFIED = "activerecord_notified"


def _channel(channel: str) -> str:
    if not _CHANNEL.match(channel):
        raise ConfigurationError(f"notification channel {channel!r}: lower-case letters, digits and _ only")
    return channel


async def _first_notification(driver: Any, timeout: float) -> bool:
    # psycopg's AsyncConnection: an async generator that ends after ``timeout``.
    async for _ in driver.notifies(timeout=timeout, stop_after=1):
        return True
    return False


#: The node setting for pgbouncer in transaction pooling mode (``engine.config.PGBOUNCER``).
PGBOUNCER = "pgbouncer"
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
    driver_modules: ClassVar[Mapping[str, str]] = {
        "psycopg": "psycopg",
        "psycopg_async": "psycopg",
        "asyncpg": "asyncpg",
        "psycopg2": "psycopg2",
    }
    extra: ClassVar[str | None] = "postgresql"

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

    def engine_url(self, url: URL, options: Mapping[str, Any]) -> URL:
        registered = _REGISTERED.get(url.get_driver_name())
        return url if registered is None else url.set(drivername=f"postgresql+{registered}")

    def connect_args(self, url: URL, options: ConnectOptions) -> dict[str, Any]:
        """libpq parameters for psycopg; ``timeout``, ``command_timeout``, ``server_settings`` and
        ``ssl`` for asyncpg. The read timeout reaches psycopg through activerecord's dialect only;
        psycopg's async mode has none (keepalives and ``tcp_user_timeout`` still apply)."""
        driver = url.get_driver_name()
        if driver in ("asyncpg", "activerecord_asyncpg"):
            args = _asyncpg_args(options)
            if driver == "activerecord_asyncpg" and options.keepalives is not None:
                args[KEEPALIVES_ARG] = options.keepalives
            return args
        args = _libpq_args(url, options)
        if driver == "activerecord_psycopg" and options.read_timeout is not None:
            args[READ_TIMEOUT_ARG] = options.read_timeout
        return args

    def kill_statement(self, driver_connection: Any) -> str | None:
        # The driver sends a cancel request of its own, but PostgreSQL ignores one that reaches
        # the session between two messages: a statement sent just before it (not yet read by a
        # busy server) then runs to its end inside the open transaction, locks held, after the
        # client has dropped the connection (the server notices only when it next writes).
        # Ending the session is certain. Only the session behind this very connection: through
        # a pooler the process id the driver knows is made up (pgbouncer's), so the port the
        # server saw the client connect from must match as well, and nothing matches there; over
        # a Unix socket, which has no port, the driver's request is all.
        session = server_session(driver_connection)
        if session is None:
            return None
        pid, port = session
        return f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid = {pid} AND client_port = {port}"

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
        driver = url.get_driver_name().removeprefix("activerecord_")  # (our dialects are the drivers')
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

    has_notifications: ClassVar[bool] = True

    def notify(self, conn: Connection, channel: str) -> None:
        """``pg_notify``: delivered at commit, and once per transaction however often it is sent."""
        conn.execute(text("SELECT pg_notify(:c, '')"), {"c": _channel(channel)})

    def listen(self, conn: Connection, channel: str) -> bool:
        driver = conn.connection.driver_connection
        add_listener = getattr(driver, "add_listener", None)
        if add_listener is None:  # psycopg (sync or async): notifications are read with notifies()
            conn.exec_driver_sql(f'LISTEN "{_channel(channel)}"')
            return True
        # asyncpg hands notifications to callbacks only (its add_listener sends the LISTEN).
        notified = asyncio.Event()
        conn.connection.info[_NOTIFIED] = notified
        await_only(add_listener(_channel(channel), lambda *_: notified.set()))
        return True

    def wait_for_notification(self, conn: Connection, timeout: float) -> bool:
        driver: Any = conn.connection.driver_connection
        notified = conn.connection.info.get(_NOTIFIED)
        if isinstance(notified, asyncio.Event):
            try:
                await_only(asyncio.wait_for(notified.wait(), timeout))
            except TimeoutError:
                return False
            notified.clear()
            return True
        if inspect.isasyncgenfunction(getattr(driver, "notifies", None)):
            return bool(await_only(_first_notification(driver, timeout)))
        return any(True for _ in driver.notifies(timeout=timeout, stop_after=1))

    def write_position(self, conn: Connection) -> int | None:
        """The primary's current WAL position (LSN)."""
        return int(conn.execute(_POSITION).scalar_one())

    def replica_status(self, conn: Connection) -> ReplicaStatus | None:
        recovering, position, lag = conn.execute(_STATUS).one()
        return ReplicaStatus(float(lag), None if position is None else int(position), bool(recovering))


BACKEND = PostgreSQL()
