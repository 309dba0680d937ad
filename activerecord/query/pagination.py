"""Pagination: keyset cursors, and numbered pages with a total count.

A keyset cursor holds the sort-key values of the last record of a page, with the table and the
sort keys it was made for. Paging by keyset reads only the rows of the page, however deep it is
(OFFSET reads and drops every row before it), and stays stable while rows are inserted before
the page. Numbered pages (LIMIT/OFFSET and a COUNT) are for listings that show page numbers.
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
    if isinstance(value, (str, int, float, bool)):
        return value
    raise QueryError(f"a {type(value).__name__} cannot be a keyset pagination key")


_PARSERS: dict[str, Callable[[str], Any]] = {
    "dt": dt.datetime.fromisoformat,
    "d": dt.date.fromisoformat,
    "dec": decimal.Decimal,
    "uuid": uuid.UUID,
}


def _untag(value: Any) -> Any:
    if isinstance(value, dict):
        if len(value) != 1:
            raise ValueError("a tagged value has one key")
        ((kind, text),) = value.items()
        if not isinstance(text, str):
            raise ValueError("a tagged value is text")
        return _PARSERS[kind](text)
    if value is None or isinstance(value, list):
        raise ValueError("a key value is never null or a list")
    return value


def _key_names(keys: Sequence[tuple[Any, bool]]) -> list[str]:
    """The sort keys as ``order_by`` spells them: ``["-score", "id"]``."""
    return [("-" if descending else "") + column.name for column, descending in keys]


def _fits(column: Any, value: Any) -> bool:
    """Whether ``value`` can be a value of ``column`` (a cursor's values are checked before any SQL)."""
    kind = column.type
    # A TypeDecorator (the UTC timestamp type, for one) says ``object``: its storage type knows.
    kind = getattr(kind, "impl", kind)
    try:
        expected = kind.python_type
    except NotImplementedError:
        return True  # a type that does not say: the database will compare as it can
    if isinstance(value, bool) or expected is bool:
        return isinstance(value, bool) and expected is bool
    if expected in (int, float, decimal.Decimal):
        # Numbers come back as int, float or Decimal depending on the backend and the driver.
        return isinstance(value, (int, float, decimal.Decimal))
    if expected is dt.date:
        return isinstance(value, dt.date) and not isinstance(value, dt.datetime)
    if expected in (str, dt.datetime, uuid.UUID):
        return isinstance(value, expected)
    return True  # enums, JSON and custom types: left to the database


def encode(table: Any, keys: Sequence[tuple[Any, bool]], values: Sequence[Any]) -> str:
    """The cursor after a record whose sort-key values are ``values``.

    It names its table and its sort keys with their directions, so that `decode` refuses it
    for any other query instead of reading a wrong page.
    """
    for (column, _), value in zip(keys, values, strict=True):
        if value is None:
            # "After NULL" has no place in the comparison: the next page would be silently empty.
            raise QueryError(
                f"keyset pagination cannot continue after a NULL {column.name!r}: sort by NOT NULL columns"
            )
    payload = {"t": table.name, "k": _key_names(keys), "v": [_tag(v) for v in values]}
    raw = json.dumps(payload, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(cursor: str, table: Any, keys: Sequence[tuple[Any, bool]]) -> list[Any]:
    """The sort-key values in ``cursor``, checked against the query's table and sort keys.

    `QueryError` for a cursor of another table or another ``order_by`` (other columns or other
    directions), and for anything that is not a well-formed cursor with values of the right types.
    """
    if not isinstance(cursor, str):
        raise QueryError(f"not a pagination cursor: a {type(cursor).__name__} (cursors are strings)")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        payload = json.loads(raw)
        if not isinstance(payload, dict) or set(payload) != {"t", "k", "v"}:
            raise ValueError("not a cursor object")
        names, values = payload["k"], payload["v"]
        if not isinstance(names, list) or not isinstance(values, list) or len(names) != len(values):
            raise ValueError("keys and values do not pair")
        values = [_untag(v) for v in values]
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise QueryError(f"not a pagination cursor: {cursor!r}") from exc
    expected = _key_names(keys)
    if payload["t"] != table.name or names != expected:
        raise QueryError(
            f"this cursor belongs to another order_by(): it continues {payload['t']!r} ordered by {names}, "
            f"this query orders {table.name!r} by {expected}"
        )
    for (column, _), value in zip(keys, values, strict=True):
        if not _fits(column, value):
            raise QueryError(f"not a pagination cursor: {column.name!r} cannot be {value!r}")
    return values


@dataclass
class NumberedPage(Generic[T]):
    """One page of records by number (LIMIT/OFFSET), with the total count.

    >>> page = Order.find().order_by("-created_at").page(3, size=20)
    >>> page.number, page.pages, page.total, page.has_next
    """

    records: list[T]
    total: int
    number: int
    size: int

    @property
    def pages(self) -> int:
        """How many pages the matching records fill (0 when none match)."""
        return -(-self.total // self.size)

    @property
    def has_next(self) -> bool:
        """Whether a page follows this one."""
        return self.number < self.pages

    @property
    def has_previous(self) -> bool:
        """Whether a page precedes this one."""
        return self.number > 1

    def __iter__(self) -> Any:
        return iter(self.records)

    def __len__(self) -> int:
        return len(self.records)


def check_page(number: Any, size: Any) -> None:
    """`QueryError` unless ``number`` (from 1) and ``size`` are positive ints."""
    for name, value in (("page number", number), ("page size", size)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise QueryError(f"the {name} must be a positive int, not {value!r}")


def numbered(
    conn: Any, count_stmt: Any, fetch: Callable[..., list[T]], stmt: Any, load: Any, offset: int
) -> tuple[int, list[T]]:
    """The total count and the page's records, read on one connection (no fetch past the end)."""
    total = int(conn.execute(count_stmt).scalar())
    return total, (fetch(conn, stmt, load) if offset < total else [])


__all__ = ["NumberedPage", "Page"]
