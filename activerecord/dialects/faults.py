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
from typing import NamedTuple

from sqlalchemy import exc as sa_exc

from ..errors import Retry

ErrorClass = type[sa_exc.DBAPIError]


class Classified(NamedTuple):
    """What a driver error means to a caller."""

    #: The SQLAlchemy class it should surface as; None where the driver's own mapping stands.
    cls: ErrorClass | None
    #: Whether running the transaction again may succeed.
    retry: Retry
    #: The connection is gone or no longer fit for use (lost link, server shutting down, a former
    #: primary that became read-only): the pool must drop it, and a COMMIT that met this error
    #: has an unknown outcome.
    lost: bool = False


#: ``classify(driver_error, is_disconnect) -> Classified``.
Classifier = Callable[[BaseException, bool], Classified]

_RETRY = Retry.RETRYABLE
_FAIL = Retry.PERMANENT

# PostgreSQL SQLSTATE codes that a repeated transaction may get past.
_PG_RETRYABLE = {
    "40001",  # serialization_failure
    "40P01",  # deadlock_detected
    "55P03",  # lock_not_available (lock_timeout, NOWAIT)
    "53300",  # too_many_connections
}
# Codes that mean this connection is done for: retryable on a new one.
_PG_LOST = {
    "57P01",  # admin_shutdown (a switchover restarts the old primary)
    "57P02",  # crash_shutdown
    "57P03",  # cannot_connect_now (starting up, in recovery)
    "25006",  # read_only_sql_transaction: the node was a primary and is now a replica
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


def classify_postgresql(error: BaseException, is_disconnect: bool) -> Classified:
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
        return Classified(sa_exc.OperationalError, _RETRY if lost else _FAIL, lost)
    lost = is_disconnect or code in _PG_LOST or code.startswith("08")
    retry = _RETRY if lost or code in _PG_RETRYABLE else _FAIL
    return Classified(sa_exc.OperationalError if code == "25006" else _PG_CLASSES.get(code[:2]), retry, lost)


# MySQL/MariaDB error numbers that a repeated transaction may get past.
_MYSQL_RETRYABLE = {
    1205,  # ER_LOCK_WAIT_TIMEOUT
    1213,  # ER_LOCK_DEADLOCK
    3572,  # ER_LOCK_NOWAIT
    1040,  # ER_CON_COUNT_ERROR (too many connections)
}
# Numbers that mean this connection is done for.
_MYSQL_LOST = {
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


def classify_mysql(error: BaseException, is_disconnect: bool) -> Classified:
    """MySQL/MariaDB, by error number (PyMySQL and asyncmy map numbers to classes alike)."""
    code = error.args[0] if error.args and isinstance(error.args[0], int) else None
    if is_disconnect or code in _MYSQL_LOST:
        return Classified(None, _RETRY, True)
    if code in _MYSQL_RETRYABLE:
        return Classified(None, _RETRY)
    if code is None and isinstance(error.__cause__ or error, OSError | TimeoutError):
        return Classified(sa_exc.OperationalError, _RETRY, True)
    return Classified(None, _FAIL)


_SQLITE_BUSY = {5, 6}  # SQLITE_BUSY, SQLITE_LOCKED


def classify_sqlite(error: BaseException, is_disconnect: bool) -> Classified:
    """SQLite: a busy or locked database file is worth another try; nothing else is."""
    if isinstance(error, sqlite3.Error):
        code = getattr(error, "sqlite_errorcode", None)
        if (code is not None and code & 0xFF in _SQLITE_BUSY) or "database is locked" in str(error):
            return Classified(None, _RETRY)
    return Classified(None, _FAIL, is_disconnect)
