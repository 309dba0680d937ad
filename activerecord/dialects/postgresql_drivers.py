"""PostgreSQL dialects of activerecord's own: psycopg with a read timeout, asyncpg with keepalives.

Registered with SQLAlchemy as ``postgresql+activerecord_psycopg`` and
``postgresql+activerecord_asyncpg`` (see `postgresql.PostgreSQL.engine_url`); SQLAlchemy imports
this module, and with it the drivers, only when such an engine is created.

- psycopg has no client-side read timeout: a statement whose reply never comes (a half-open
  link, a stalled proxy) waits for ever, and keepalives cannot tell when the peer's kernel still
  acknowledges. psycopg 3.2+ gives its wait loop a ``timeout``: the connection class here passes
  ``read_timeout`` to it, closes the connection when it expires (so SQLAlchemy discards it) and
  raises `psycopg.OperationalError`.
- asyncpg takes no keepalive settings: they are set on its socket once connected.
- Both run a single statement in autocommit when asked (`base.begin_autocommit`), switching the
  driver's own client-side flag for it (`_Autocommitting`).
"""

from __future__ import annotations

import inspect
import os
import socket
import warnings
from functools import cache
from typing import Any

from sqlalchemy import Connection
from sqlalchemy import types as sqltypes
from sqlalchemy.dialects.postgresql.asyncpg import PGCompiler_asyncpg, PGDialect_asyncpg
from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg

from .base import begins_autocommit
from .options import Keepalives, set_keepalives

#: The connect argument carrying ``read_timeout`` to `PsycopgDialect.connect`.
READ_TIMEOUT_ARG = "activerecord_read_timeout"
#: The connect argument carrying keepalive settings to `AsyncpgDialect.connect`.
KEEPALIVES_ARG = "activerecord_keepalives"
#: The execution option that marks an engine's connections as going through pgbouncer.
THROUGH_PGBOUNCER = "activerecord_pgbouncer"


@cache
def _connection_class() -> Any:
    """psycopg's `Connection` with ``read_timeout``, or psycopg's own where it cannot be done."""
    import psycopg

    wait_timeout: type[Exception] | None = getattr(psycopg.errors, "_WaitTimeout", None)
    parameters = inspect.signature(psycopg.Connection.wait).parameters
    if wait_timeout is None or "timeout" not in parameters or "interval" not in parameters:
        warnings.warn(
            "this psycopg version offers no wait timeout: read_timeout is not applied on psycopg",
            RuntimeWarning,
            stacklevel=2,
        )
        return psycopg.Connection
    default_interval: float = parameters["interval"].default

    class ReadTimeoutConnection(psycopg.Connection):
        read_timeout: float | None = None

        def wait(self, gen: Any, interval: float = default_interval, timeout: float | None = None) -> Any:
            if timeout is not None or self.read_timeout is None:
                return super().wait(gen, interval, timeout)  # psycopg's own bounded wait: its handling
            timeout = self.read_timeout
            try:
                return super().wait(gen, interval, timeout)
            except wait_timeout as timed_out:  # type: ignore[misc]  # (not None here)
                # Mid-protocol: the connection cannot be used again. Closed, SQLAlchemy
                # takes the error for a disconnect and drops it from the pool.
                self.close()
                raise psycopg.OperationalError(
                    f"no reply from the server within {timeout:g}s (read_timeout); the connection is closed"
                ) from timed_out

    return ReadTimeoutConnection


# Where a connection's pool entry notes that `_Autocommitting.do_begin` switched its driver to
# autocommit, for the COMMIT or ROLLBACK that ends the statement to switch it back.
_SWITCHED = "activerecord_autocommit"


class _Autocommitting:
    """One statement in autocommit (`base.begin_autocommit`): the driver's own switch, which
    psycopg 3 and SQLAlchemy's asyncpg adapter keep on the client (no round trip), turned on at
    the BEGIN that sends nothing, and off again when that transaction ends. The driver then sends
    neither BEGIN nor COMMIT/ROLLBACK: the statement is one round trip."""

    def activerecord_autocommits(self, conn: Connection) -> bool:
        """``do_begin`` honours `base.begin_autocommit` (see `base.autocommits`)."""
        return True

    def do_begin(self, dbapi_connection: Any) -> None:
        if begins_autocommit():
            driver = dbapi_connection.dbapi_connection
            if not driver.autocommit:  # (a connection configured for autocommit stays as it is)
                driver.autocommit = True
                dbapi_connection.info[_SWITCHED] = True
            return
        super().do_begin(dbapi_connection)  # type: ignore[misc]

    def do_commit(self, dbapi_connection: Any) -> None:
        try:
            super().do_commit(dbapi_connection)  # type: ignore[misc]
        finally:
            _switch_back(dbapi_connection)

    def do_rollback(self, dbapi_connection: Any) -> None:
        try:
            super().do_rollback(dbapi_connection)  # type: ignore[misc]
        finally:
            _switch_back(dbapi_connection)


def _switch_back(pooled: Any) -> None:
    # Never back to the pool in autocommit: the next user expects a transaction to begin.
    # (The driver's flag first: the connection of a dialect's first connect has no pool entry.)
    driver = pooled.dbapi_connection
    if driver.autocommit and pooled.info.pop(_SWITCHED, False):
        driver.autocommit = False


class PsycopgDialect(_Autocommitting, PGDialect_psycopg):
    """psycopg 3 with ``read_timeout``, and single statements in autocommit."""

    supports_statement_cache = True

    def connect(self, *cargs: Any, **cparams: Any) -> Any:
        read_timeout = cparams.pop(READ_TIMEOUT_ARG, None)
        connection = _connection_class().connect(*cargs, **cparams)
        connection.read_timeout = read_timeout
        return connection


def driver_socket(driver_connection: Any) -> Any:
    """The socket under an asyncio driver's connection (asyncpg, asyncmy), or None."""
    transport = getattr(driver_connection, "_transport", None)
    return None if transport is None else transport.get_extra_info("socket")


def server_session(driver_connection: Any) -> tuple[int, int] | None:
    """The server process id an async driver's connection (asyncpg, psycopg) reports, and the TCP
    port it connects from; None over a Unix socket or where the driver does not tell."""
    try:
        if hasattr(driver_connection, "get_server_pid"):  # asyncpg
            pid = int(driver_connection.get_server_pid())
            sockname = driver_socket(driver_connection).getsockname()
        else:  # psycopg: libpq's socket, duplicated so that closing the copy leaves it open
            pid = int(driver_connection.info.backend_pid)
            with socket.socket(fileno=os.dup(driver_connection.pgconn.socket)) as sock:
                sockname = sock.getsockname()
    except Exception:  # the driver's own error on a connection it has closed meanwhile, say
        return None
    if not isinstance(sockname, tuple):
        return None  # a Unix socket: no port
    return pid, int(sockname[1])


class _AsyncpgCompiler(PGCompiler_asyncpg):
    def render_bind_cast(self, type_: Any, dbapi_type: Any, sqltext: str) -> str:
        # asyncpg gets every parameter with a cast. Cast to NUMERIC(10, 2) and a comparison value
        # of 2.495 becomes 2.50 on the server, so `price > 2.495` misses a price of 2.50, where
        # psycopg (no cast) is right. Cast to plain NUMERIC, as SQLAlchemy casts strings to
        # VARCHAR without their length.
        if dbapi_type._type_affinity is sqltypes.Numeric and (dbapi_type.precision or dbapi_type.scale):
            dbapi_type = sqltypes.NUMERIC()
        return str(super().render_bind_cast(type_, dbapi_type, sqltext))  # type: ignore[no-untyped-call]


class AsyncpgDialect(_Autocommitting, PGDialect_asyncpg):
    """asyncpg with TCP keepalives, numeric parameters cast without precision and scale, and
    single statements in autocommit (not through pgbouncer)."""

    supports_statement_cache = True
    statement_compiler = _AsyncpgCompiler

    def activerecord_autocommits(self, conn: Connection) -> bool:
        # SQLAlchemy's asyncpg adapter prepares a statement (a named one: see
        # `postgresql._statement_name`) and runs it in a second round trip. pgbouncer in
        # transaction mode may give the second to another server connection, outside a
        # transaction, where the statement does not exist: there, it runs in one.
        return not conn.get_execution_options().get(THROUGH_PGBOUNCER)

    def connect(self, *cargs: Any, **cparams: Any) -> Any:
        keepalives: Keepalives | None = cparams.pop(KEEPALIVES_ARG, None)
        connection = super().connect(*cargs, **cparams)
        set_keepalives(driver_socket(connection.driver_connection), keepalives)
        return connection
