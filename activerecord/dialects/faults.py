"""How each backend's errors are classified: the SQLAlchemy class they surface as, and whether
running the transaction again may succeed (`activerecord.errors.Retry`).

The drivers of one backend disagree: asyncpg's errors reach SQLAlchemy as a generic `DBAPIError`
where psycopg's are `OperationalError`, `IntegrityError`, ... by SQLSTATE. Classifying by the
backend's own codes (SQLSTATE on PostgreSQL, the error number on MySQL/MariaDB, the result code
on SQLite) gives one answer for both drivers of a backend.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from sqlalchemy import exc as sa_exc

from ..errors import Retry

ErrorClass = type[sa_exc.DBAPIError]
#: ``classify(driver_error, is_disconnect) -> (SQLAlchemy class it should surface as, Retry)``;
#: the class is None where the driver's own mapping stands.
Classifier = Callable[[BaseException, bool], tuple[ErrorClass | None, Retry]]

_RETRY = Retry.RETRYABLE
_FAIL = Retry.PERMANENT

# PostgreSQL SQLSTATE codes that a repeated transaction may get past.
_PG_RETRYABLE = {
    "40001",  # serialization_failure
    "40P01",  # deadlock_detected
    "55P03",  # lock_not_available (lock_timeout, NOWAIT)
    "57P01",  # admin_shutdown
    "57P02",  # crash_shutdown
    "57P03",  # cannot_connect_now (starting up, in recovery)
    "53300",  # too_many_connections
}
# SQLSTATE class -> the SQLAlchemy class psycopg (and PEP 249) use for it.
_PG_CLASSES: dict[str, ErrorClass] = {
    "08": sa_exc.OperationalError,
    "0A": sa_exc.NotSupportedError,
    "22": sa_exc.DataError,
    "23": sa_exc.IntegrityError,
    "25": sa_exc.InternalError,
    "28": sa_exc.OperationalError,
    "3D": sa_exc.OperationalError,
    "40": sa_exc.OperationalError,
    "42": sa_exc.ProgrammingError,
    "53": sa_exc.OperationalError,
    "55": sa_exc.OperationalError,
    "57": sa_exc.OperationalError,
    "58": sa_exc.OperationalError,
    "XX": sa_exc.InternalError,
}


def _sqlstate(error: BaseException) -> str | None:
    # psycopg errors and SQLAlchemy's adapted asyncpg errors both carry ``sqlstate``.
    code = getattr(error, "sqlstate", None) or getattr(error, "pgcode", None)
    return code if isinstance(code, str) else None


# libpq reports a failed connection attempt with no SQLSTATE, only text (psycopg passes it on).
_PG_TRANSIENT_TEXT = (
    "connection refused",
    "timeout expired",
    "timed out",
    "could not translate host name",
    "no route to host",
    "network is unreachable",
    "connection reset",
    "server closed the connection",
    "could not receive data",
    "could not send data",
    "consuming input failed",
    "connection not open",
    "the connection is closed",
    "ssl syscall error",
    "the database system is starting up",
    "the database system is shutting down",
    "the database system is in recovery mode",
    "too many clients",
    "terminating connection",
)


def classify_postgresql(error: BaseException, is_disconnect: bool) -> tuple[ErrorClass | None, Retry]:
    """PostgreSQL, by SQLSTATE (psycopg and asyncpg alike)."""
    code = _sqlstate(error)
    if code is None:
        # No SQLSTATE: the link itself failed (refused, reset, timed out, unknown host), or libpq
        # could not connect and said why only in words.
        text = str(error).lower()
        lost = (
            is_disconnect
            or isinstance(error.__cause__ or error, OSError | TimeoutError)
            or any(marker in text for marker in _PG_TRANSIENT_TEXT)
        )
        return (sa_exc.OperationalError, _RETRY if lost else _FAIL)
    retry = _RETRY if code in _PG_RETRYABLE or code.startswith("08") or is_disconnect else _FAIL
    return _PG_CLASSES.get(code[:2]), retry


# MySQL/MariaDB error numbers that a repeated transaction may get past.
_MYSQL_RETRYABLE = {
    1205,  # ER_LOCK_WAIT_TIMEOUT
    1213,  # ER_LOCK_DEADLOCK
    3572,  # ER_LOCK_NOWAIT
    1040,  # ER_CON_COUNT_ERROR (too many connections)
    1053,  # ER_SERVER_SHUTDOWN
    1927,  # ER_CONNECTION_KILLED (MariaDB)
    2002,  # CR_CONNECTION_ERROR
    2003,  # CR_CONN_HOST_ERROR
    2005,  # CR_UNKNOWN_HOST
    2006,  # CR_SERVER_GONE_ERROR
    2013,  # CR_SERVER_LOST
    2055,  # CR_SERVER_LOST_EXTENDED
    4031,  # ER_CLIENT_INTERACTION_TIMEOUT
}


def classify_mysql(error: BaseException, is_disconnect: bool) -> tuple[ErrorClass | None, Retry]:
    """MySQL/MariaDB, by error number (PyMySQL and asyncmy map numbers to classes alike)."""
    code = error.args[0] if error.args and isinstance(error.args[0], int) else None
    if is_disconnect or code in _MYSQL_RETRYABLE:
        return None, _RETRY
    if code is None and isinstance(error.__cause__ or error, OSError | TimeoutError):
        return sa_exc.OperationalError, _RETRY
    return None, _FAIL


_SQLITE_BUSY = {5, 6}  # SQLITE_BUSY, SQLITE_LOCKED


def classify_sqlite(error: BaseException, is_disconnect: bool) -> tuple[ErrorClass | None, Retry]:
    """SQLite: a busy or locked database file is worth another try; nothing else is."""
    if isinstance(error, sqlite3.Error):
        code = getattr(error, "sqlite_errorcode", None)
        if code is not None and code & 0xFF in _SQLITE_BUSY:
            return None, _RETRY
        if "database is locked" in str(error):
            return None, _RETRY
    return None, _FAIL
