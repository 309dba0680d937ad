"""Driver errors made the same in sync and async code: one SQLAlchemy class per failure, the
cause chained, and a retry class attached (`activerecord.errors.retry_class`).

Two engine events do it, both public SQLAlchemy API: ``do_connect`` turns a bare `OSError` or
`TimeoutError` from an async driver's connect (asyncpg raises them unwrapped; the sync drivers
wrap their own) into the driver module's `OperationalError`, so SQLAlchemy wraps it as it wraps
every other driver error; and
``handle_error`` upgrades a generic `DBAPIError` to the class its code calls for and records how
a caller may react.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Dialect, ExceptionContext

from ..dialects.faults import Classifier
from ..errors import RETRY_ATTRIBUTE

# The classes a driver error reaches the caller as when the driver module named nothing better.
_GENERIC = (sa_exc.DBAPIError, sa_exc.DatabaseError)


def install(engine: Engine, classify: Classifier, *, wraps_connect_errors: bool = False) -> None:
    """Classify every error of ``engine`` (an `Engine`, or an `AsyncEngine`'s ``sync_engine``).

    ``wraps_connect_errors``: its driver raises `OSError` and `TimeoutError` from a connect
    unwrapped (async drivers), so a ``do_connect`` listener wraps them. Only then: any dialect
    event makes SQLAlchemy look for ``do_execute`` listeners around every statement.
    """

    def on_error(context: ExceptionContext) -> BaseException | None:
        wrapped = context.sqlalchemy_exception
        if not isinstance(wrapped, sa_exc.DBAPIError) or wrapped.orig is None:
            return None
        cls, retry, lost = classify(context.original_exception, context.is_disconnect)
        if lost and not context.is_disconnect:
            # SQLAlchemy's own test missed it (a shutdown, a demoted primary): have the pool drop
            # the connection, and mark the error so that a COMMIT meeting it is an unknown outcome.
            context.is_disconnect = True
        if cls is not None and type(wrapped) in _GENERIC and cls is not type(wrapped):
            upgraded = cls(
                wrapped.statement,
                wrapped.params,
                wrapped.orig,
                hide_parameters=wrapped.hide_parameters,
                connection_invalidated=context.is_disconnect,
                ismulti=wrapped.ismulti,
            )
            setattr(upgraded, RETRY_ATTRIBUTE, retry)
            return upgraded
        setattr(wrapped, RETRY_ATTRIBUTE, retry)
        return None

    event.listen(engine, "handle_error", on_error)
    if wraps_connect_errors:
        event.listen(engine, "do_connect", _connect)


def _connect(dialect: Dialect, conn_rec: Any, cargs: tuple[Any, ...], cparams: dict[str, Any]) -> Any:
    try:
        return dialect.connect(*cargs, **cparams)
    except (OSError, TimeoutError) as exc:
        dbapi: Any = dialect.loaded_dbapi
        if isinstance(exc, dbapi.Error):
            raise
        message = str(exc) or f"{type(exc).__name__}: connecting timed out"
        raise dbapi.OperationalError(message) from exc
