"""Keyset pagination: opaque cursors holding the sort-key values of the last record of a page.

Paging by keyset reads only the rows of the page, however deep it is (OFFSET reads and drops
every row before it), and stays stable while rows are inserted before the page.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import decimal
import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, and_, or_
from sqlalchemy.sql import operators
from sqlalchemy.sql.elements import UnaryExpression

from ..errors import QueryError

T = TypeVar("T")


@dataclass
class Page(Generic[T]):
    """One page of records, and the cursor of the next page (None on the last one).

    >>> page = Order.find().order_by("-created_at").paginate(20)
    >>> more = Order.find().order_by("-created_at").paginate(20, after=page.next_cursor)
    """

    records: list[T]
    next_cursor: str | None

    @property
    def has_more(self) -> bool:
        """Whether another page follows."""
        return self.next_cursor is not None

    def __iter__(self) -> Any:
        return iter(self.records)

    def __len__(self) -> int:
        return len(self.records)


def sort_keys(model: Any, order_by: Sequence[Any]) -> list[tuple[Any, bool]]:
    """(column, descending) for each sort key, the primary key appended as the tie-breaker."""
    table = model.__table__
    keys: list[tuple[Any, bool]] = []
    for key in order_by:
        descending = False
        column = key
        if isinstance(key, UnaryExpression) and key.modifier in (operators.desc_op, operators.asc_op):
            descending = key.modifier is operators.desc_op
            column = key.element
        if getattr(column, "table", None) is not table or column.name not in model.__fields__:
            raise QueryError(f"keyset pagination sorts by {model.__name__}'s own columns, not {key!r}")
        keys.append((column, descending))
    pk = table.c[model._ar_pk]
    if not any(c is pk for c, _ in keys):
        keys.append((pk, False))
    return keys


def condition(keys: Sequence[tuple[Any, bool]], values: Sequence[Any]) -> ColumnElement[bool]:
    """Rows strictly after ``values`` in the order of ``keys`` (lexicographic, any mix of directions)."""
    ors = []
    for i, (column, descending) in enumerate(keys):
        equal = [keys[j][0] == values[j] for j in range(i)]
        beyond = column < values[i] if descending else column > values[i]
        ors.append(and_(*equal, beyond))
    return or_(*ors)


def _tag(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return {"dt": value.isoformat()}
    if isinstance(value, dt.date):
        return {"d": value.isoformat()}
    if isinstance(value, decimal.Decimal):
        return {"dec": str(value)}
    if isinstance(value, uuid.UUID):
        return {"uuid": str(value)}
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise QueryError(f"a {type(value).__name__} cannot be a keyset pagination key")


def _untag(value: Any) -> Any:
    if isinstance(value, dict) and len(value) == 1:
        ((kind, text),) = value.items()
        parsers: dict[str, Callable[[str], Any]] = {
            "dt": dt.datetime.fromisoformat,
            "d": dt.date.fromisoformat,
            "dec": decimal.Decimal,
            "uuid": uuid.UUID,
        }
        parse = parsers[kind]
        return parse(text)
    return value


def encode(values: Sequence[Any]) -> str:
    """The cursor for a record whose sort-key values are ``values``."""
    raw = json.dumps([_tag(v) for v in values], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(cursor: str, width: int) -> list[Any]:
    """The sort-key values in ``cursor``; `QueryError` for a cursor of another query or garbage."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = [_untag(v) for v in json.loads(raw)]
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise QueryError(f"not a pagination cursor: {cursor!r}") from exc
    if len(values) != width:
        raise QueryError("this cursor belongs to a query with another order_by()")
    return values


__all__ = ["Page"]
