"""The error hierarchy: every error this package raises derives from `ActiveRecordError`.

Driver errors are never swallowed: where one is wrapped, the SQLAlchemy exception is chained
as ``__cause__``.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence

from sqlalchemy import exc as sa_exc


class Retry(enum.Enum):
    """What a caller may do about an error: the classification `retry_class` gives.

    - ``RETRYABLE``: running the whole transaction again may succeed (serialization failure,
      deadlock, lock timeout, a connection lost before the commit was sent, a busy SQLite file,
      no pooled connection free in time). Nothing of the failed attempt was committed.
    - ``UNKNOWN_OUTCOME``: the link died after COMMIT was sent; the transaction may or may not
      have committed (`CommitOutcomeUnknown`). Check before doing it again.
    - ``PERMANENT``: running it again fails the same way (constraint, data, programming errors,
      bad input, configuration).
    """

    RETRYABLE = "retryable"
    UNKNOWN_OUTCOME = "unknown_outcome"
    PERMANENT = "permanent"


# Set on a driver error (the SQLAlchemy exception) by the engine's error handler, which knows
# the backend; read by `retry_class`.
RETRY_ATTRIBUTE = "activerecord_retry"


class ActiveRecordError(Exception):
    """Base class of every error raised by activerecord."""

    #: How a caller may react (see `retry_class`); permanent unless a subclass says otherwise.
    retry: Retry = Retry.PERMANENT


class ConfigurationError(ActiveRecordError):
    """A connection or model is configured wrongly (unknown driver, missing key, unknown name)."""


class ValidationError(ActiveRecordError):
    """One or more field values are invalid; raised before any SQL runs.

    ``errors`` maps each bad field name to the list of messages about it::

        try:
            User(name=None).save()
        except ValidationError as e:
            e.errors  # {"name": ["may not be null"]}
    """

    def __init__(self, model: str, errors: Mapping[str, list[str]]) -> None:
        self.model = model
        self.errors: dict[str, list[str]] = {k: list(v) for k, v in errors.items()}
        detail = "; ".join(f"{field}: {', '.join(msgs)}" for field, msgs in self.errors.items())
        super().__init__(f"{model} is invalid: {detail}")


class UnknownFieldError(ValidationError):
    """A keyword argument names no field of the model (no silent mass assignment)."""


class RecordNotFound(ActiveRecordError):
    """``one()`` found no row."""


class MultipleRecordsFound(ActiveRecordError):
    """``one()`` or ``one_or_none()`` found more than one row."""


class ReadOnlyError(ActiveRecordError):
    """A write was attempted where writes are not allowed (a replica, a ``prevent_writes`` scope)."""


class TransactionError(ActiveRecordError):
    """A transaction was used wrongly (sync call inside an async transaction, and the like)."""


class SyncInAsyncError(ActiveRecordError):
    """A sync I/O method was called on a thread whose event loop is running; raised before any I/O.

    The message names the async twin to await instead (``Order.save()`` -> ``await order.asave()``).
    Notebooks and REPLs opt out with `activerecord.allow_sync_in_event_loop()` or the environment
    variable ``ACTIVERECORD_ALLOW_SYNC_IN_LOOP=1``.
    """


class MissingPrimaryKeyError(ActiveRecordError):
    """An operation needs the primary key of a record that has none (not saved yet)."""


class QueryError(ActiveRecordError):
    """A query was built wrongly (a Python bool in ``where``, an unknown field name, ...)."""


class RelationNotLoaded(ActiveRecordError):
    """A relation that was not loaded was read where loading it would be hidden I/O (async code).

    The message names the fix: ``includes("name")`` on the query, or ``await record.aload("name")``.
    """


class StaleObjectError(ActiveRecordError):
    """An optimistic-locking update or delete found the row changed (or gone) since it was read.

    Nothing was written; reload the record and apply the change again.
    """


class ConcurrencyError(ActiveRecordError):
    """An event stream was appended to with a stale expected version: another writer got there first.

    Nothing was written. Retryable: read the stream again, decide again, append with the version
    read (``transaction(retry=...)`` does it when the read happens inside the retried block).
    ``stream_id`` is the stream, ``expected`` the version given, ``actual`` the version found
    (None when the stream does not exist).
    """

    retry = Retry.RETRYABLE

    def __init__(self, stream_id: str, expected: int | None, actual: int | None) -> None:
        self.stream_id = stream_id
        self.expected = expected
        self.actual = actual
        found = "no such stream" if actual is None else f"it is at version {actual}"
        super().__init__(f"stream {stream_id!r}: expected version {expected}, but {found}")


class ShardQueryError(ActiveRecordError):
    """One or more shards failed during an ``on_all_shards()`` query.

    ``errors`` maps each failed shard to its exception; the first one is chained as ``__cause__``.
    """

    def __init__(self, errors: dict[str, BaseException]) -> None:
        self.errors = errors
        detail = "; ".join(f"{shard}: {type(exc).__name__}: {exc}" for shard, exc in errors.items())
        super().__init__(f"{len(errors)} shard(s) failed: {detail}")


class ShardWriteError(ShardQueryError):
    """A write spanning several shards (``insert_many`` on a sharded model) failed on some of them.

    Each shard is written in a transaction of its own, so the shards in ``committed`` (in shard
    order) keep their rows; ``errors`` maps each failed shard to its exception, whose rows were
    rolled back. ``saved`` lists the input positions of the rows that were written.
    """

    def __init__(self, errors: dict[str, BaseException], committed: Sequence[str], saved: Sequence[int]) -> None:
        super().__init__(errors)
        self.committed = list(committed)
        self.saved = list(saved)
        kept = ", ".join(self.committed) or "none"
        self.args = (f"{self.args[0]}; committed on: {kept}",)


class CommitOutcomeUnknown(ActiveRecordError):
    """The connection was lost after COMMIT was sent: the transaction may or may not be committed.

    Never a success and never a plain failure: look at the database (an idempotency key, the
    row itself) before doing the work again. The driver error is chained as ``__cause__``.
    """

    retry = Retry.UNKNOWN_OUTCOME


class MigrationError(ActiveRecordError):
    """A schema migration could not run: no environment, an unknown revision, a failed script.

    ``results`` holds the status of every target database (`activerecord.migrations.NodeStatus`)
    when the error comes from a run over several of them, else an empty list.
    """

    def __init__(self, message: str, results: Sequence[object] | None = None) -> None:
        super().__init__(message)
        self.results: list[object] = list(results or ())


class MigrationLockError(MigrationError):
    """Another process held the migration lock longer than the lock timeout allowed."""


class SchemaDriftError(MigrationError):
    """The models and the migrations differ (``db check``); ``diffs`` lists the differences."""

    def __init__(self, message: str, diffs: Sequence[object]) -> None:
        super().__init__(message)
        self.diffs = list(diffs)


def retry_class(exc: BaseException) -> Retry:
    """Whether running the failed transaction again may succeed: see `Retry`.

    Works on any exception a call of this package raises, in sync and async code alike, on every
    backend: activerecord's own errors, and the driver errors that reach the caller as SQLAlchemy
    exceptions (classified by the engine that raised them).

    >>> retry_class(ValueError())
    <Retry.PERMANENT: 'permanent'>
    """
    if isinstance(exc, ActiveRecordError):
        return exc.retry
    found = getattr(exc, RETRY_ATTRIBUTE, None)
    if isinstance(found, Retry):
        return found
    if isinstance(exc, sa_exc.TimeoutError):  # no pooled connection was free in time
        return Retry.RETRYABLE
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return Retry.RETRYABLE
    return Retry.PERMANENT


def is_retryable(exc: BaseException) -> bool:
    """``retry_class(exc) is Retry.RETRYABLE``."""
    return retry_class(exc) is Retry.RETRYABLE


__all__ = [
    "ActiveRecordError",
    "CommitOutcomeUnknown",
    "ConcurrencyError",
    "ConfigurationError",
    "MigrationError",
    "MigrationLockError",
    "MissingPrimaryKeyError",
    "MultipleRecordsFound",
    "QueryError",
    "ReadOnlyError",
    "RecordNotFound",
    "RelationNotLoaded",
    "Retry",
    "SchemaDriftError",
    "ShardQueryError",
    "ShardWriteError",
    "StaleObjectError",
    "SyncInAsyncError",
    "TransactionError",
    "UnknownFieldError",
    "ValidationError",
    "is_retryable",
    "retry_class",
]
