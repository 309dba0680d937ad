"""A statement whose task is cancelled is stopped on the server, not only abandoned by the client.

When the task awaiting an async operation is cancelled, the greenlet bridge throws the
`asyncio.CancelledError` into the operation's greenlet, where the driver waited for the server.
SQLAlchemy then drops the connection (its wire protocol is mid-reply). The server notices a
vanished client only when it next writes to it: until the statement ends, its session runs on
inside its open transaction, holding its locks. asyncmy only closes its socket; the PostgreSQL
drivers send a cancel request, which PostgreSQL ignores when it arrives before the session has
read the statement. Where the backend names a statement that ends the session
(`Backend.kill_statement`), a ``handle_error`` listener runs it on a side connection of its own
(not one of the pool's, which may all be taken) before SQLAlchemy drops the connection. It runs in
the cancelled task, which awaits it for at most `KILL_TIMEOUT` seconds before its cancellation
goes on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.engine import Dialect, ExceptionContext

from ..dialects import Backend
from .greenlets import run_in_greenlet, wait

log = logging.getLogger("activerecord.cancel")

#: Seconds the cancelled task waits at most for the side connection to kill its statement.
KILL_TIMEOUT = 2.0

# The connection record's key for the statement that ends its session.
_KILL = "activerecord_kill_statement"


def install(engine: Engine, backend: Backend) -> None:
    """Stop the statement of a cancelled task on the server, for ``engine`` (an `AsyncEngine`'s
    ``sync_engine``), with the SQL `Backend.kill_statement` gives for a driver connection."""
    # How the pool connects (the driver's arguments, connect_args included), seen at the first
    # connect: the side connection connects the same way. (Installed before any ``do_connect``
    # listener that makes the connection, which ends the chain.)
    connect: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

    def remember(dialect: Dialect, record: Any, cargs: tuple[Any, ...], cparams: dict[str, Any]) -> None:
        if not connect:
            connect.append((tuple(cargs), dict(cparams)))

    def identify(dbapi_connection: Any, record: Any) -> None:
        # Worked out at connect, while the connection is whole: a driver may close its socket
        # itself when cancelled (psycopg does, once the query outlives its own cancel request).
        record.info[_KILL] = backend.kill_statement(dbapi_connection.driver_connection)

    def on_error(context: ExceptionContext) -> None:
        conn = context.connection
        if not isinstance(context.original_exception, asyncio.CancelledError) or conn is None or not connect:
            return
        if conn.invalidated or conn.closed:
            return
        statement = conn.info.get(_KILL)
        if statement is not None:
            cargs, cparams = connect[0]
            _kill(context.dialect, cargs, cparams, statement, backend.session_ended)

    event.listen(engine, "do_connect", remember)
    event.listen(engine, "connect", identify)
    event.listen(engine, "handle_error", on_error)


def _kill(
    dialect: Dialect,
    cargs: tuple[Any, ...],
    cparams: dict[str, Any],
    statement: str,
    session_ended: Callable[[BaseException], bool],
) -> None:
    def side() -> None:
        conn = dialect.connect(*cargs, **cparams)
        try:
            cursor = conn.cursor()
            cursor.execute(statement)
            cursor.close()
        finally:
            conn.close()

    try:
        # Inside the cancelled operation's greenlet: awaited by its task, bounded, in a
        # greenlet of its own so that the timeout can interrupt the driver's waits.
        wait(run_in_greenlet(side), KILL_TIMEOUT)
    except Exception as exc:  # the cancellation must go on: the statement runs to its end
        if session_ended(exc):
            return  # (it ended on its own, or with the connection, before the kill arrived)
        log.warning("could not stop a cancelled statement on the server: %s", type(exc).__name__)
