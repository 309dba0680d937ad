"""A statement whose driver gave up waiting for the reply, reported like any lost connection.

asyncpg's ``command_timeout`` (activerecord's ``read_timeout`` on asyncpg) raises a bare
`TimeoutError` and leaves the connection waiting for its cancel request. An engine event turns
that into the driver's `OperationalError` (retryable, as a lost connection before the commit
is) and has SQLAlchemy invalidate the connection, so it never goes back to the pool. The other
drivers raise their own `OperationalError` on a read timeout and need nothing here.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import ExceptionContext

from ..errors import RETRY_ATTRIBUTE, Retry


def install(engine: Engine) -> None:
    """Report ``engine``'s driver timeouts as `sqlalchemy.exc.OperationalError`."""
    event.listen(engine, "handle_error", _on_error)


def _on_error(context: ExceptionContext) -> BaseException | None:
    error = context.original_exception
    if context.sqlalchemy_exception is not None or not isinstance(error, TimeoutError):
        return None
    dbapi: Any = context.dialect.loaded_dbapi
    orig = dbapi.OperationalError(f"no reply from the server in time (read_timeout): {type(error).__name__}")
    orig.__cause__ = error
    context.is_disconnect = True
    wrapped = sa_exc.OperationalError(context.statement, context.parameters, orig, connection_invalidated=True)
    setattr(wrapped, RETRY_ATTRIBUTE, Retry.RETRYABLE)
    return wrapped
