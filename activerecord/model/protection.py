"""Mass-assignment protection: the fields a caller's keywords may not set.

``create(**request_body)`` must not set what the model itself keeps: the primary key it
generates, the lock version, automatic timestamps, the soft-delete mark, and fields declared
``protected=True``. The constructor, ``create`` and ``update`` refuse them by name, before
anything is assigned; ``with Model.unprotected():`` lifts the refusal for imports, fixtures
and tests.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from ..errors import ValidationError
from .fields import Field, _DateTimeField
from .fields_extra import _SoftDeleteField, _VersionField

_NEW: Any = object()

# The model classes (ActiveRecord itself: every model) whose protected fields are assignable in
# the current thread or task. A context variable, so one task's import never opens another's.
_open: ContextVar[tuple[type, ...]] = ContextVar("activerecord_unprotected", default=())


def kept_by_model(field: Field[Any]) -> bool:
    """Whether the model (or the caller's declaration) keeps ``field`` from mass assignment,
    the primary key aside (see `protected_fields`)."""
    if field.protected or isinstance(field, (_VersionField, _SoftDeleteField)):
        return True
    return isinstance(field, _DateTimeField) and (field.auto_now_add or field.auto_now)


def protected_fields(model: Any, fields: Mapping[str, Field[Any]], pk: str) -> tuple[frozenset[str], frozenset[str]]:
    """The names refused on a new record and on a saved one.

    The primary key of a new record is the caller's when the database does not generate it (a
    key declared ``autoincrement=False``, ids from `generate_id`) or the model is sharded by
    ``__shard_key__`` (the key picks the shard); an auto-increment key is the database's. A saved
    record's key never changes.
    """
    kept = {name for name, field in fields.items() if kept_by_model(field)}
    update = frozenset(kept | {pk})
    caller_keyed = not fields[pk].autoincrement or getattr(model, "__shard_key__", None) is not None
    return frozenset(kept if caller_keyed else kept | {pk}), update


def is_open(model: type) -> bool:
    """Whether ``with unprotected(...)`` lifts the protection for ``model`` here."""
    return any(issubclass(model, opened) for opened in _open.get())


def refuse(model: type, names: Iterable[str], saved: bool) -> None:
    """Raise `ValidationError` naming each protected field in ``names`` (in the caller's order)."""
    why = "is the record's key and cannot change" if saved else "is protected: assign it inside Model.unprotected()"
    raise ValidationError(model.__name__, {name: [why] for name in names})


def check(model: type, values: Mapping[str, Any], protected: frozenset[str], saved_pk: Any = _NEW) -> None:
    """Refuse the keys of ``values`` that ``protected`` names, unless ``model`` is unprotected here.

    ``saved_pk`` is the key of the saved record being updated (left out for a new record): a
    different key is refused even when unprotected (it would be another row), the same key
    again is no change and passes.
    """
    hit = [name for name in values if name in protected]
    if not hit:
        return
    if saved_pk is not _NEW:
        pk = model._ar_pk  # type: ignore[attr-defined]
        if pk in hit:
            if values[pk] != saved_pk:
                refuse(model, [pk], True)
            hit.remove(pk)
        if not hit:
            return
    if not is_open(model):
        refuse(model, hit, False)


@contextmanager
def unprotected(model: type) -> Iterator[None]:
    """Let ``model`` (and its subclasses) take protected fields from keywords inside the block."""
    token = _open.set((*_open.get(), model))
    try:
        yield
    finally:
        _open.reset(token)


__all__ = ["check", "is_open", "kept_by_model", "protected_fields", "refuse", "unprotected"]
