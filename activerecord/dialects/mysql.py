"""MySQL/MariaDB: PyMySQL (sync) and asyncmy (async); DATETIME values go to and come from the driver in UTC.

activerecord stores every datetime in a ``DATETIME`` column as UTC (see `model.types.UTCDateTime`).
The drivers' own converters work with naive values, so every value had to be made naive before
a write and aware after a read, one Python call each; and PyMySQL's converters are themselves
Python: a regular expression to read a DATETIME (about 2 µs) and a ``str.format`` to write one
(about 1.5 µs). The converters here go in the driver's ``conv`` mapping (as Django's MySQL
backend does for mysqlclient): a DATETIME is read with its UTC offset in one C call, and an
aware datetime is written as its UTC text by one ``%`` format. They come with dialects of their
own, registered with SQLAlchemy as ``mysql+activerecord_pymysql`` and ``mysql+activerecord_asyncmy``
(`UTCConverting`), on which `model.types.UTCDateTime` then adds no processing of its own and
FLOAT and DOUBLE columns are read as the drivers decode them (`_DriverFloat`). Bulk writes go out
1,000 rows at a time (`MySQL.rows_per_statement`), with or without these converters. The same
dialects keep their connections in the server's autocommit mode and begin transactions
explicitly (`ExplicitBegin`), so that a single statement is one round trip.
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import ssl
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import Connection, Table, text
from sqlalchemy.dialects import mysql, registry
from sqlalchemy.dialects.mysql.asyncmy import (
    AsyncAdapt_asyncmy_connection,
    AsyncAdapt_asyncmy_cursor,
    MySQLDialect_asyncmy,
)
from sqlalchemy.dialects.mysql.base import MySQLDialect
from sqlalchemy.dialects.mysql.pymysql import MySQLDialect_pymysql
from sqlalchemy.engine import URL, Dialect
from sqlalchemy.engine.interfaces import ConnectArgsType
from sqlalchemy.sql import sqltypes
from sqlalchemy.types import TypeEngine

from ..errors import MigrationLockError
from .base import Backend, begins_autocommit
from .deadlines import bounded
from .faults import Classified, classify_mysql
from .options import ConnectOptions, Keepalives, set_keepalives, ssl_context
from .utc import naive_to_utc, utc_text

#: MySQL's type code of a DATETIME column in a result, as the drivers report it.
DATETIME = 12
#: MySQL's type codes of FLOAT and DOUBLE result columns.
_FLOAT_TYPES = frozenset((4, 5))

_parse = datetime.fromisoformat


def _decoder(fallback: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def utc_datetime(text: Any) -> Any:
        if text.__class__ is not str:
            text = text.decode("ascii")
        try:
            return _parse(text + "+00:00")
        except ValueError:
            # What Python's parser refuses (zero dates such as '0000-00-00 00:00:00') gets
            # the driver's own treatment: such values come back as text, as they always did.
            value = fallback(text)
            return naive_to_utc(value) if isinstance(value, datetime) else value

    return utc_datetime


def _encode_datetime(value: datetime, mapping: Any = None) -> str:
    # The literal PyMySQL's own encoder writes, but in UTC for an aware value (PyMySQL would
    # write its wall-clock time and drop the zone).
    return "'" + utc_text(value) + "'"


def _conversions(driver: str) -> dict[Any, Any]:
    # (asyncmy is a compiled port of PyMySQL's API, converters included.)
    converters = importlib.import_module(f"{driver}.converters")
    conv: dict[Any, Any] = dict(converters.conversions)
    conv[DATETIME] = _decoder(converters.convert_datetime)
    conv[datetime] = _encode_datetime
    return conv


class _DriverFloat(mysql.FLOAT):
    """SQLAlchemy's MySQL float, minus the per-value ``float()`` where the driver made floats.

    SQLAlchemy converts every value of a float-typed result column with ``float()``, because
    on MySQL such a column may hold DECIMAL values (an expression labelled a float). PyMySQL's
    and asyncmy's own converters already return ``float`` for FLOAT and DOUBLE columns: for
    those the conversion is skipped; any other column (a DECIMAL) is converted as before.
    """

    def result_processor(self, dialect: Dialect, coltype: Any) -> Callable[[Any], Any] | None:
        if coltype in _FLOAT_TYPES:
            return None
        return super().result_processor(dialect, coltype)  # type: ignore[no-untyped-call,no-any-return]


class UTCConverting:
    """A MySQL dialect whose driver connections carry this module's converters: DATETIME read as
    aware UTC values, aware datetimes written as UTC text, FLOAT and DOUBLE read as decoded."""


def _with_converters(connect: ConnectArgsType, driver: str) -> ConnectArgsType:
    args, kwargs = connect
    return args, {**kwargs, "conv": _conversions(driver)}


#: Connect arguments that activerecord's dialects take off before calling the driver.
KEEPALIVES_ARG = "activerecord_keepalives"
STATEMENT_TIMEOUT_ARG = "activerecord_statement_timeout"


def _statement_timeout_sql(server_info: str, seconds: float) -> str:
    # MariaDB bounds every statement (seconds); MySQL only SELECTs (milliseconds).
    if "mariadb" in server_info.lower():
        return f"SET SESSION max_statement_time = {seconds:g}"
    return f"SET SESSION max_execution_time = {max(1, round(seconds * 1000))}"


def _refuse_plain_text(connection: Any, encrypted: bool, driver: str) -> None:
    """The drivers go on in plain text when the server offers no TLS, even when given a TLS
    context; a connection that asked for TLS and did not get it is closed and refused."""
    if not encrypted:
        connection.close()
        errors = importlib.import_module(f"{driver}.err" if driver == "pymysql" else f"{driver}.errors")
        raise errors.OperationalError(2026, "TLS was required (ssl), but the server does not offer it")


#: SERVER_STATUS_IN_TRANS: the flag of the server status (sent with every reply) that says a
#: transaction is open on the session.
SERVER_STATUS_IN_TRANS = 1


class ExplicitBegin:
    """Connections kept in the server's autocommit mode, with a BEGIN sent for each transaction.

    PyMySQL and asyncmy switch autocommit with a statement (``SET AUTOCOMMIT``), and their
    ``commit()`` and ``rollback()`` always send one: a single statement in autocommit the
    SQLAlchemy way would cost a round trip to switch, one to switch back, and the pool's reset
    ROLLBACK. Here the connection is in autocommit from its connect on; `do_begin` sends BEGIN
    unless `base.begin_autocommit` asked for none; COMMIT and ROLLBACK are sent only while the
    server status says a transaction is open, which also makes the pool's reset free for a
    connection that ends outside one. A single statement is then one round trip.
    """

    def activerecord_autocommits(self, conn: Connection) -> bool:
        """``do_begin`` honours `base.begin_autocommit` (see `base.autocommits`)."""
        return True

    _on_connect_isolation_level: Any

    def do_begin(self, dbapi_connection: Any) -> None:
        if begins_autocommit() or self._on_connect_isolation_level == "AUTOCOMMIT":
            return
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("BEGIN")
        finally:
            cursor.close()

    def do_commit(self, dbapi_connection: Any) -> None:
        if self._server_status(dbapi_connection.dbapi_connection) & SERVER_STATUS_IN_TRANS:
            super().do_commit(dbapi_connection)  # type: ignore[misc]

    def do_rollback(self, dbapi_connection: Any) -> None:
        if self._server_status(dbapi_connection.dbapi_connection) & SERVER_STATUS_IN_TRANS:
            super().do_rollback(dbapi_connection)  # type: ignore[misc]

    def set_isolation_level(self, dbapi_connection: Any, level: Any) -> None:
        # The drivers' dialects turn the server's autocommit off for any level but AUTOCOMMIT;
        # here it stays on (transactions begin explicitly), and a level is the session's.
        if level != "AUTOCOMMIT":
            MySQLDialect.set_isolation_level(self, dbapi_connection, level)  # type: ignore[arg-type]

    def _server_status(self, driver_connection: Any) -> int:
        """The server status flags of the last reply on ``driver_connection``."""
        return int(driver_connection.server_status)


class PyMySQLDialect(ExplicitBegin, UTCConverting, MySQLDialect_pymysql):
    """PyMySQL with activerecord's converters, keepalives, statement timeout, and a connect
    bounded by ``connect_timeout`` (PyMySQL's own covers the TCP connect only: the handshake
    then reads with ``read_timeout``, so a host that accepts and never answers held a connect
    for as long as that)."""

    supports_statement_cache = True
    colspecs = {**MySQLDialect_pymysql.colspecs, sqltypes.Float: _DriverFloat}

    def create_connect_args(self, url: URL, _translate_args: dict[str, Any] | None = None) -> ConnectArgsType:
        return _with_converters(super().create_connect_args(url, _translate_args), "pymysql")

    def connect(self, *cargs: Any, **cparams: Any) -> Any:
        keepalives: Keepalives | None = cparams.pop(KEEPALIVES_ARG, None)
        statement_timeout: float | None = cparams.pop(STATEMENT_TIMEOUT_ARG, None)
        cparams.setdefault("autocommit", True)  # (see `ExplicitBegin`)
        read_timeout = cparams.get("read_timeout")
        connect_timeout = cparams.get("connect_timeout")
        if connect_timeout and (read_timeout is None or read_timeout > connect_timeout):
            cparams["read_timeout"] = connect_timeout
        connection: Any = super().connect(*cargs, **cparams)
        if isinstance(cparams.get("ssl"), ssl.SSLContext):
            _refuse_plain_text(connection, isinstance(getattr(connection, "_sock", None), ssl.SSLSocket), "pymysql")
        if hasattr(connection, "_read_timeout"):
            connection._read_timeout = read_timeout  # from the next read on (PyMySQL re-applies it)
        set_keepalives(getattr(connection, "_sock", None), keepalives)
        if statement_timeout is not None:
            with connection.cursor() as cursor:
                cursor.execute(_statement_timeout_sql(connection.get_server_info(), statement_timeout))
        return connection


class AsyncmyDialect(ExplicitBegin, UTCConverting, MySQLDialect_asyncmy):
    """asyncmy with activerecord's converters, keepalives, statement timeout, and a connect
    bounded by ``connect_timeout`` as a whole (as for PyMySQL, asyncmy's own bounds the TCP
    connect only)."""

    supports_statement_cache = True
    colspecs = {**MySQLDialect_asyncmy.colspecs, sqltypes.Float: _DriverFloat}

    def create_connect_args(self, url: URL) -> ConnectArgsType:  # type: ignore[override]
        return _with_converters(super().create_connect_args(url), "asyncmy")

    def connect(self, *cargs: Any, **cparams: Any) -> Any:
        keepalives: Keepalives | None = cparams.pop(KEEPALIVES_ARG, None)
        statement_timeout: float | None = cparams.pop(STATEMENT_TIMEOUT_ARG, None)
        cparams.setdefault("autocommit", True)  # (see `ExplicitBegin`)
        connect_timeout: float | None = cparams.get("connect_timeout")
        # asyncmy bounds each read with asyncio.wait_for, which on Python 3.11 can swallow the
        # cancellation of the task when the read completes at the same moment: a cancelled task
        # then runs its next statement to the end. The bound is applied around each statement
        # with asyncio.timeout instead, which tells its own timeout from a cancellation.
        read_timeout: float | None = cparams.pop("read_timeout", None)
        open_connection = cparams.pop("async_creator_fn", None) or importlib.import_module("asyncmy").connect

        async def connect(*args: Any, **kwargs: Any) -> Any:
            # asyncio.timeout, not wait_for: a cancellation arriving as the connect completes
            # must still cancel the task (Python 3.11's wait_for can drop it).
            task = asyncio.current_task()
            requested = 0 if task is None else task.cancelling()
            async with asyncio.timeout(connect_timeout):
                connection = await open_connection(*args, **kwargs)
            if task is not None and task.cancelling() > requested:
                # asyncmy bounds its TCP connect with wait_for, which on Python 3.11 returns the
                # connection in place of a cancellation that arrives as the connect completes:
                # the cancelled task would go on to run its statements. Raised here instead.
                connection.close()
                raise asyncio.CancelledError
            transport = getattr(connection, "_transport", None)
            if isinstance(kwargs.get("ssl"), ssl.SSLContext):
                encrypted = transport is not None and transport.get_extra_info("sslcontext") is not None
                _refuse_plain_text(connection, encrypted, "asyncmy")
            set_keepalives(None if transport is None else transport.get_extra_info("socket"), keepalives)
            if statement_timeout is not None:
                async with connection.cursor() as cursor:
                    await cursor.execute(_statement_timeout_sql(connection.get_server_info(), statement_timeout))
            return connection

        adapted: Any = super().connect(*cargs, async_creator_fn=connect, **cparams)
        if read_timeout is not None:
            adapted.__class__ = _timed_connection(read_timeout)
        return adapted

    def _server_status(self, driver_connection: Any) -> int:
        return int(driver_connection._connection.server_status)  # (SQLAlchemy's adapter around asyncmy's)


@functools.cache
def _timed_connection(read_timeout: float) -> type[AsyncAdapt_asyncmy_connection]:
    """SQLAlchemy's asyncmy connection whose statements each end within ``read_timeout`` seconds
    (one class per value: the adapted connection has no room for a setting of its own)."""

    class TimedCursor(AsyncAdapt_asyncmy_cursor):
        __slots__ = ()

        async def _execute_async(self, operation: Any, parameters: Any) -> Any:
            return await _bounded(super()._execute_async(operation, parameters), read_timeout)

        async def _executemany_async(self, operation: Any, seq_of_parameters: Any) -> Any:
            return await _bounded(super()._executemany_async(operation, seq_of_parameters), read_timeout)

    class TimedConnection(AsyncAdapt_asyncmy_connection):
        __slots__ = ()
        _cursor_cls = TimedCursor

    return TimedConnection


async def _bounded(work: Any, seconds: float) -> Any:
    return await bounded(work, seconds, functools.partial(_no_answer, seconds))


def _no_answer(seconds: float) -> BaseException:
    error: BaseException = importlib.import_module("asyncmy.errors").OperationalError(
        2013, f"Lost connection to MySQL server during query (no answer within read_timeout={seconds:g}s)"
    )
    return error


#: ER_NO_SUCH_THREAD: a KILL for a session that has ended.
_NO_SUCH_THREAD = 1094

registry.register("mysql.activerecord_pymysql", __name__, "PyMySQLDialect")
registry.register("mysql.activerecord_asyncmy", __name__, "AsyncmyDialect")
_REGISTERED = {"pymysql": "activerecord_pymysql", "asyncmy": "activerecord_asyncmy"}
# The drivers whose arguments `MySQL.connect_args` knows: PyMySQL and asyncmy, with or without
# activerecord's dialects.
_TRANSLATED = frozenset({*_REGISTERED, *_REGISTERED.values()})


def _lock_acquired(conn: Connection, name: str, seconds: int) -> bool:
    return bool(conn.execute(text("SELECT GET_LOCK(:n, :t)"), {"n": name, "t": seconds}).scalar() == 1)


class MySQL(Backend):
    """MySQL and MariaDB through PyMySQL and asyncmy."""

    name: ClassVar[str] = "mysql"
    aliases: ClassVar[tuple[str, ...]] = ("mariadb",)
    sync_driver: ClassVar[str] = "pymysql"
    async_driver: ClassVar[str] = "asyncmy"
    async_drivers: ClassVar[frozenset[str]] = frozenset({"asyncmy", "aiomysql"})
    default_port: ClassVar[int | None] = 3306
    # The drivers' executemany packs rows into INSERT statements of up to 1 MB. Measured on
    # MariaDB 10.11: after one 650 KB INSERT (10,000 rows), reading 10,000 rows on that same
    # connection took 0.80-0.84 µs a row, against 0.46-0.55 after the same rows sent 1,000 at
    # a time, which inserted no slower. 1,000 is SQLAlchemy's own page size for multi-row
    # INSERT ... RETURNING.
    rows_per_statement: ClassVar[int | None] = 1000
    driver_modules: ClassVar[Mapping[str, str]] = {
        "pymysql": "pymysql",
        "asyncmy": "asyncmy",
        "aiomysql": "aiomysql",
        "mysqldb": "MySQLdb",
        "mysqlconnector": "mysql.connector",
    }
    extra: ClassVar[str | None] = "mysql"

    def skips_locked_rows(self, dialect: Dialect) -> bool:
        version = tuple(dialect.server_version_info or ())
        if getattr(dialect, "is_mariadb", False):
            return version[:2] >= (10, 6)
        return version[:3] >= (8, 0, 1)

    def classify_error(self, error: BaseException, is_disconnect: bool) -> Classified:
        return classify_mysql(error, is_disconnect)

    def prepare_url(self, connection: str, url: URL) -> tuple[URL, str | None]:
        if "charset" not in url.query:
            url = url.update_query_dict({"charset": "utf8mb4"})
        return url, None

    def engine_url(self, url: URL, options: Mapping[str, Any]) -> URL:
        # The converters go with PyMySQL and asyncmy (a compiled port of PyMySQL's API), and only
        # when the caller gives no ``conv`` of their own.
        registered = _REGISTERED.get(url.get_driver_name())
        if registered is None or "conv" in (options.get("connect_args") or {}):
            return url
        return url.set(drivername=f"mysql+{registered}")

    def connect_args(self, url: URL, options: ConnectOptions) -> dict[str, Any]:
        """PyMySQL's and asyncmy's arguments (they share them): ``connect_timeout``,
        ``read_timeout`` (and PyMySQL's ``write_timeout``), ``ssl`` (a context), ``program_name``; keepalives
        and the statement timeout (a session variable) through activerecord's dialects only."""
        args: dict[str, Any] = {}
        if url.get_driver_name() not in _TRANSLATED:
            return args  # (aiomysql, mysqlclient, ... name their arguments differently: connect_args)
        if options.connect_timeout is not None:
            args["connect_timeout"] = options.connect_timeout
        if options.read_timeout is not None:
            args["read_timeout"] = options.read_timeout
            if url.get_driver_name() in ("pymysql", "activerecord_pymysql"):
                args["write_timeout"] = options.read_timeout  # (asyncmy has none)
        if options.application_name is not None:
            args["program_name"] = options.application_name
        if options.ssl is not None:
            context = ssl_context(options.ssl)
            if context is not None:
                args["ssl"] = context
        if url.get_driver_name() in _REGISTERED.values():
            if options.keepalives is not None:
                args[KEEPALIVES_ARG] = options.keepalives
            if options.statement_timeout is not None:
                args[STATEMENT_TIMEOUT_ARG] = options.statement_timeout
        return args

    def kill_statement(self, driver_connection: Any) -> str | None:
        # The client drops a connection whose statement was cancelled, but the server only
        # notices when it next writes to it: until the statement ends, its session keeps running
        # it inside the open transaction, locks held. KILL CONNECTION, not KILL QUERY: a statement
        # still in flight when the kill arrives would start after a KILL QUERY, not after this.
        return f"KILL CONNECTION {int(driver_connection.thread_id())}"

    def session_ended(self, error: BaseException) -> bool:
        return bool(error.args) and error.args[0] == _NO_SUCH_THREAD

    def datetime_type(self) -> TypeEngine[Any] | None:
        # Microsecond precision, which MySQL's DATETIME drops by default.
        return mysql.DATETIME(fsp=6)

    def datetime_bind_processor(
        self, dialect: Dialect, inner: Callable[[Any], Any] | None
    ) -> Callable[[Any], Any] | None:
        if inner is None and isinstance(dialect, UTCConverting):
            return None  # the driver writes aware values as UTC text
        return super().datetime_bind_processor(dialect, inner)

    def datetime_result_processor(self, dialect: Dialect, coltype: Any, inner: Callable[[Any], Any] | None) -> Any:
        if coltype == DATETIME and inner is None and isinstance(dialect, UTCConverting):
            return None  # the driver decodes DATETIME to aware UTC values
        return super().datetime_result_processor(dialect, coltype, inner)

    def upsert(self, table: Table, conflict: Sequence[str], update: Sequence[str], pk: str) -> Any:
        # ON DUPLICATE KEY UPDATE reacts to any unique key: ``conflict`` names the key the caller
        # expects, checked but not sent. With nothing to update, re-assigning the key leaves the
        # row as it is.
        stmt = mysql.insert(table)
        changes = {c: stmt.inserted[c] for c in update} if update else {pk: table.c[pk]}
        return stmt.on_duplicate_key_update(changes)

    def acquire_migration_lock(self, conn: Connection, name: str, timeout: float, waiting: Callable[[], None]) -> bool:
        """A named ``GET_LOCK``, held by the session: it survives the migration's own commits
        and vanishes with the session if the process dies."""
        if _lock_acquired(conn, name, 0):
            return True
        waiting()
        # GET_LOCK blocks in the server for up to the timeout (whole seconds on MariaDB).
        if not _lock_acquired(conn, name, max(1, round(timeout))):
            conn.rollback()
            raise MigrationLockError(f"the migration lock {name!r} was not free within {timeout:g}s")
        return True

    def release_migration_lock(self, conn: Connection, name: str) -> None:
        conn.execute(text("SELECT RELEASE_LOCK(:n)"), {"n": name})


BACKEND = MySQL()
