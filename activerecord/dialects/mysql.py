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
1,000 rows at a time (`MySQL.rows_per_statement`), with or without these converters.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import Connection, Table, text
from sqlalchemy.dialects import mysql, registry
from sqlalchemy.dialects.mysql.asyncmy import MySQLDialect_asyncmy
from sqlalchemy.dialects.mysql.pymysql import MySQLDialect_pymysql
from sqlalchemy.engine import URL, Dialect
from sqlalchemy.engine.interfaces import ConnectArgsType
from sqlalchemy.sql import sqltypes
from sqlalchemy.types import TypeEngine

from ..errors import MigrationLockError
from .base import Backend
from .faults import Classified, classify_mysql
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


class PyMySQLDialect(UTCConverting, MySQLDialect_pymysql):
    """PyMySQL with activerecord's converters."""

    supports_statement_cache = True
    colspecs = {**MySQLDialect_pymysql.colspecs, sqltypes.Float: _DriverFloat}

    def create_connect_args(self, url: URL, _translate_args: dict[str, Any] | None = None) -> ConnectArgsType:
        return _with_converters(super().create_connect_args(url, _translate_args), "pymysql")


class AsyncmyDialect(UTCConverting, MySQLDialect_asyncmy):
    """asyncmy with activerecord's converters."""

    supports_statement_cache = True
    colspecs = {**MySQLDialect_asyncmy.colspecs, sqltypes.Float: _DriverFloat}

    def create_connect_args(self, url: URL) -> ConnectArgsType:  # type: ignore[override]
        return _with_converters(super().create_connect_args(url), "asyncmy")


registry.register("mysql.activerecord_pymysql", __name__, "PyMySQLDialect")
registry.register("mysql.activerecord_asyncmy", __name__, "AsyncmyDialect")
_REGISTERED = {"pymysql": "activerecord_pymysql", "asyncmy": "activerecord_asyncmy"}


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

    def kill_statement(self, driver_connection: Any) -> str | None:
        # The client drops a connection whose statement was cancelled, but the server only
        # notices when it next writes to it: until the statement ends, its session keeps running
        # it inside the open transaction, locks held. KILL CONNECTION, not KILL QUERY: a statement
        # still in flight when the kill arrives would start after a KILL QUERY, not after this.
        return f"KILL CONNECTION {int(driver_connection.thread_id())}"

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
