"""The save and delete of models with lifecycle hooks, a lock version or soft delete.

Models with none of these never come here: `ActiveRecord.save` checks one class flag, computed
when the class is declared. Hooks run inside a transaction (the caller's, or one opened for the
save), so I/O done by a hook commits or rolls back with the write; ``after_commit`` and
``after_rollback`` run once the outermost transaction has ended.

Written once as sync code: ``asave``/``adelete`` run the same functions through the greenlet
bridge, where a coroutine hook is awaited (`wait`) in place.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy import Connection

from ..connections import execute as _execute
from ..connections import transaction as _transaction
from ..dialects.utc import utcnow
from ..engine import operations as _operations
from ..engine.greenlets import bridged, wait
from ..errors import ConfigurationError, StaleObjectError

R = TypeVar("R")

HOOKS = (
    "before_validate",
    "after_validate",
    "before_save",
    "after_save",
    "before_create",
    "after_create",
    "before_update",
    "after_update",
    "before_delete",
    "after_delete",
    "after_commit",
    "after_rollback",
)
"""The hook method names a model may define, in no particular order."""


def hooks_of(cls: Any) -> tuple[frozenset[str], frozenset[str]]:
    """The hooks ``cls`` defines, and which of them are coroutine functions."""
    hooks = frozenset(h for h in HOOKS if callable(getattr(cls, h, None)))
    return hooks, frozenset(h for h in hooks if inspect.iscoroutinefunction(getattr(cls, h)))


def _refuse_async(record: Any, verb: str) -> None:
    found = type(record)._ar_async_hooks
    if found and not bridged():
        raise ConfigurationError(
            f"{type(record).__name__} has async hooks ({', '.join(sorted(found))}): use a{verb}() in async code"
        )


def _call(record: Any, hook: str) -> None:
    if hook in type(record)._ar_hooks:
        result = getattr(record, hook)()
        if inspect.isawaitable(result):  # only inside the bridge: `_refuse_async` let it through
            wait(result)


def _on_rollback(record: Any, name: str) -> None:
    if "after_rollback" in type(record)._ar_hooks:
        tx = _transaction.current(name)
        if tx is not None:
            tx.on_rollback(record.after_rollback)


def _on_commit(record: Any, name: str) -> None:
    if "after_commit" in type(record)._ar_hooks:
        tx = _transaction.current(name)
        if tx is not None:
            tx.on_commit(record.after_commit)


@contextmanager
def _scope(record: Any, name: str) -> Iterator[None]:
    # With hooks, the write and any hook I/O share one transaction (the caller's, or this one).
    if type(record)._ar_hooks and _transaction.current(name) is None:
        with _transaction.transaction(name):
            yield
    else:
        yield


# -- save ---------------------------------------------------------------------------------------


def _prepare(record: Any) -> tuple[dict[str, Any] | None, Any]:
    """The pending write; with a lock version, also the version the row must still have."""
    creating = record._ar_saved is None
    pending: dict[str, Any] | None = record._ar_prepare_save()
    version = type(record)._ar_version
    if pending is None or version is None or creating:
        return pending, None
    expected = record.__dict__[version]
    pending[version] = expected + 1
    return pending, expected


@_operations.one_statement
def _save_op(conn: Connection, record: Any, pending: dict[str, Any], expected: Any) -> None:
    if expected is None:
        record._ar_save_op(conn, pending)
        return
    cls = type(record)
    params = dict(pending)
    params["_ar_pk"] = record.pk
    params["_ar_version"] = expected
    if conn.execute(cls._ar_update_versioned, params).rowcount == 0:
        raise StaleObjectError(
            f"{cls.__name__} {record.pk!r} changed or was deleted since version {expected} was read; nothing written"
        )


def _finish(record: Any, expected: Any) -> None:
    if expected is not None:
        record.__dict__[type(record)._ar_version] = expected + 1
    record._ar_snapshot()


def save(record: R, using: str | None) -> R:
    """`ActiveRecord.save` with hooks, lock version and soft delete handled (``asave`` runs it
    through the greenlet bridge)."""
    r: Any = record
    _refuse_async(r, "save")
    name = r._ar_connection(using)
    creating = r._ar_saved is None
    with _scope(r, name):
        _call(r, "before_validate")
        r.validate()
        _call(r, "after_validate")
        _call(r, "before_save")
        _call(r, "before_create" if creating else "before_update")
        pending, expected = _prepare(r)
        if pending is not None:
            _on_rollback(r, name)
            _execute.run(name, True, _save_op, r, pending, expected)
            _finish(r, expected)
        _call(r, "after_create" if creating else "after_update")
        _call(r, "after_save")
        _on_commit(r, name)
    if using is not None:
        r._ar_using = using
    return record


# -- delete -------------------------------------------------------------------------------------


@_operations.one_statement
def _delete_op(conn: Connection, record: Any, soft: bool, expected: Any, now: Any) -> int:
    cls = type(record)
    table = cls.__table__
    where = [table.c[cls._ar_pk] == record.pk]
    if expected is not None:
        where.append(table.c[cls._ar_version] == expected)
    stmt: Any
    if soft:
        values = {cls._ar_soft: now}
        if expected is not None:
            values[cls._ar_version] = expected + 1
        stmt = table.update().where(*where).values(values)
    else:
        stmt = table.delete().where(*where)
    count: int = conn.execute(stmt).rowcount
    if count == 0 and expected is not None:
        raise StaleObjectError(
            f"{cls.__name__} {record.pk!r} changed or was deleted since version {expected} was read; nothing deleted"
        )
    return count


def _delete_args(record: Any, hard: bool) -> tuple[bool, Any, Any]:
    cls = type(record)
    record._ar_require_pk()
    soft = cls._ar_soft is not None and not hard
    expected = record.__dict__[cls._ar_version] if cls._ar_version is not None else None
    return soft, expected, utcnow() if soft else None


def _deleted(record: Any, soft: bool, expected: Any, now: Any) -> None:
    cls = type(record)
    d = record.__dict__
    if not soft:
        record._ar_saved = None
        return
    d[cls._ar_soft] = now
    if expected is not None:
        d[cls._ar_version] = expected + 1
    record._ar_snapshot()


def delete(record: Any, using: str | None, hard: bool = False) -> bool:
    """`ActiveRecord.delete` with hooks, lock version and soft delete handled (``adelete`` runs
    it through the greenlet bridge)."""
    _refuse_async(record, "delete")
    name = record._ar_connection(using)
    soft, expected, now = _delete_args(record, hard)
    with _scope(record, name):
        _call(record, "before_delete")
        _on_rollback(record, name)
        count = _execute.run(name, True, _delete_op, record, soft, expected, now)
        _deleted(record, soft, expected, now)
        _call(record, "after_delete")
        _on_commit(record, name)
    return count > 0


__all__ = ["HOOKS"]
