"""The error hierarchy: every error this package raises derives from `ActiveRecordError`.

Driver errors are never swallowed: where one is wrapped, the SQLAlchemy exception is chained
as ``__cause__``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence


class ActiveRecordError(Exception):
    """Base class of every error raised by activerecord."""


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


__all__ = [
    "ActiveRecordError",
    "ConfigurationError",
    "MigrationError",
    "MigrationLockError",
    "MissingPrimaryKeyError",
    "MultipleRecordsFound",
    "QueryError",
    "ReadOnlyError",
    "RecordNotFound",
    "RelationNotLoaded",
    "SchemaDriftError",
    "ShardQueryError",
    "ShardWriteError",
    "StaleObjectError",
    "SyncInAsyncError",
    "TransactionError",
    "UnknownFieldError",
    "ValidationError",
]
