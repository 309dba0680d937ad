"""The insert values of many rows, checked as `save` checks one record, without building records.

`bulk_insert` and `upsert` hand their rows to one executemany and return no records, so a
record per row (its constructor, its snapshot) would be work for nothing. The values get
exactly the treatment a record gets on insert: defaults, ``auto_now``/``auto_now_add``
timestamps, every field check, the primary-key and server-default rules. A model with
validators written as methods, or rows that are records or name relations, take the record
path (`ActiveRecord._ar_bulk`), since those need a record to run.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ._fields import field_errors, utcnow
from .errors import ValidationError


def insert_values(model: Any, rows: Iterable[Any]) -> list[dict[str, Any]]:
    """The validated insert values of ``rows``, in order; `ValidationError` names every problem.

    Nothing is written here: the caller runs SQL only when every row passed.
    """
    rows = list(rows)
    if model._ar_checks:
        return _record_values(model, rows)
    names = model.__fields__.keys()
    blank = model._ar_blank
    defaulted = model._ar_defaulted
    checks = model._ar_fast_checks
    all_valid = model._ar_all_valid
    auto_now = model._ar_auto_now
    # One instant for the whole batch: the rows are written by one statement.
    stamps = [(name, name in auto_now) for name in model._ar_auto_add]
    now = utcnow() if stamps else None
    dropped = (model._ar_pk, *model._ar_server_defaults)  # left to the database when None
    out: list[dict[str, Any]] = []
    errors: dict[str, list[str]] = {}
    for i, row in enumerate(rows):
        if not ((row.__class__ is dict or isinstance(row, Mapping)) and row.keys() <= names):
            return _record_values(model, rows)
        d = blank.copy()
        d.update(row)
        for name, field in defaulted:
            if name not in row:
                d[name] = field.initial()
        for name, always in stamps:
            if always or d[name] is None:
                d[name] = now
        if not all_valid(d):
            problems = field_errors(checks, d)
            if problems:
                for name, messages in problems.items():
                    errors[f"rows[{i}].{name}"] = messages
                continue
        for name in dropped:
            if d[name] is None:
                del d[name]
        out.append(d)
    if errors:
        raise ValidationError(model.__name__, errors)
    pk = model._ar_pk
    keyed = sum(pk in d for d in out)
    if keyed and keyed != len(out):
        raise ValidationError(model.__name__, {pk: ["give it for every row or for none"]})
    return out


def _record_values(model: Any, rows: list[Any]) -> list[dict[str, Any]]:
    """The insert values by way of a record per row: for method validators, which need a
    record; for rows that are records; for unknown keys, which may name relations."""
    values: list[dict[str, Any]] = model._ar_bulk(rows)[1]
    return values
