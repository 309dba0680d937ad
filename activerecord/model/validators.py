"""Custom validators declared as model methods, run with the field checks so that one
`ValidationError` reports every problem at once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from ..errors import ConfigurationError

F = TypeVar("F", bound=Callable[..., Any])

RECORD = "__all__"
"""The key of messages about the record as a whole (not one field) in ``ValidationError.errors``."""


def validates(*fields: str) -> Callable[[F], F]:
    """Mark a model method as a validator.

    With field names, the method is called as ``method(value)`` for each of them (skipped when
    the value is None or already failed the field's own checks) and returns a message, a list
    of messages, or None. Without names it checks the whole record: ``method()`` returns None,
    a message (filed under ``"__all__"``), or a mapping of field name to message(s).

    >>> class User(ActiveRecord):
    ...     email: Field[str] = StringField()
    ...     @validates("email")
    ...     def _email_has_at(self, value: str) -> str | None:
    ...         return None if "@" in value else "must contain @"
    """
    for name in fields:
        if not isinstance(name, str) or not name:
            raise ConfigurationError(f"validates() takes field names, not {name!r}")

    def mark(method: F) -> F:
        method._ar_validates = tuple(fields)  # type: ignore[attr-defined]
        return method

    return mark


def collect(cls: Any) -> tuple[tuple[tuple[str, ...], str], ...]:
    """The validators of ``cls`` (inherited ones included) as (fields, method name) pairs."""
    found: dict[str, tuple[str, ...]] = {}
    for klass in reversed(cls.__mro__):
        for name, value in vars(klass).items():
            fields = getattr(value, "_ar_validates", None)
            if fields is not None:
                unknown = [f for f in fields if f not in cls.__fields__]
                if unknown:
                    raise ConfigurationError(f"{cls.__name__}.{name} validates unknown field(s) {', '.join(unknown)}")
                found[name] = fields
    return tuple((fields, name) for name, fields in found.items())


def _add(errors: dict[str, list[str]], key: str, result: Any) -> None:
    if not result:
        return
    messages = [result] if isinstance(result, str) else [str(m) for m in result]
    errors.setdefault(key, []).extend(messages)


def run(record: Any, errors: dict[str, list[str]]) -> None:
    """Add the messages of ``record``'s custom validators to ``errors``."""
    d = record.__dict__
    failed = set(errors)
    for fields, name in type(record)._ar_checks:
        method = getattr(record, name)
        if not fields:
            result = method()
            if isinstance(result, Mapping):
                for key, messages in result.items():
                    _add(errors, key, messages)
            else:
                _add(errors, RECORD, result)
            continue
        for field in fields:
            value = d[field]
            if value is None or field in failed:
                continue
            _add(errors, field, method(value))
