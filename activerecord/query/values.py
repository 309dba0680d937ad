"""Comparison values in SQL expressions, checked against the fields of the columns they compare.

``where(User.token == 0)`` must not reach MariaDB, which compares a string column to 0 as a
number (every token that does not start with a digit matches). `check_condition` walks a
condition and checks what it can see: each comparison (``==``, ``!=``, ``<``, ``<=``, ``>``,
``>=``, ``in_``, ``not_in``, ``between``, ``is_distinct_from``) of a model's column with bound
values, by the column's field (`Field.query_value`); each pattern (``like``, ``ilike``,
``contains``, ``startswith``, ``endswith``, ``regexp_match``) must be a string; each JSON path
step a string or an int. Any bound string anywhere in the condition may not hold a NUL (no
backend's text does). Values in expressions are checked, not coerced: an expression is the
caller's object, and ``where(field=value)`` is the form that coerces (``"12"`` to 12).

Columns of aliased tables, values inside functions (``func.lower(User.name) == 0``) and
`sqlalchemy.text` are the caller's SQL and are not looked into beyond the NUL test.
"""

from __future__ import annotations

import operator
from typing import Any

from sqlalchemy.sql import operators as ops
from sqlalchemy.sql.elements import BinaryExpression, BindParameter, ClauseElement, ClauseList, ColumnClause, Tuple
from sqlalchemy.sql.schema import Column
from sqlalchemy.sql.selectable import FromClause

from ..errors import QueryError

FIELD_INFO = "activerecord.field"  # the key `Field.column` stores its field under

_COMPARISONS = frozenset(
    {
        operator.eq,
        operator.ne,
        operator.lt,
        operator.le,
        operator.gt,
        operator.ge,
        ops.in_op,
        ops.not_in_op,
        ops.between_op,
        ops.not_between_op,
        ops.is_distinct_from,
        ops.is_not_distinct_from,
    }
)
_PATTERNS = frozenset(
    {
        ops.like_op,
        ops.not_like_op,
        ops.ilike_op,
        ops.not_ilike_op,
        ops.contains_op,
        ops.not_contains_op,
        ops.startswith_op,
        ops.not_startswith_op,
        ops.endswith_op,
        ops.not_endswith_op,
        ops.regexp_match_op,
        ops.not_regexp_match_op,
        ops.match_op,
        ops.not_match_op,
    }
)
_LIKES = frozenset({ops.like_op, ops.not_like_op, ops.ilike_op, ops.not_ilike_op})
_JSON_PATHS = frozenset({ops.json_getitem_op, ops.json_path_getitem_op})


def _binds(element: Any) -> list[BindParameter[Any]]:
    """The bound parameters a comparison's right side holds directly (one, or a tuple's)."""
    if isinstance(element, BindParameter):
        return [element]
    if isinstance(element, (ClauseList, Tuple)) or hasattr(element, "clauses"):
        return [c for c in element.clauses if isinstance(c, BindParameter)]
    return []


def _values(bind: BindParameter[Any]) -> list[Any]:
    value = bind.effective_value
    if bind.expanding:
        return list(value or ())
    return [value]


def _dangling_escape(pattern: str) -> bool:
    """Whether ``pattern`` ends in an odd run of backslashes (an escape with nothing to escape)."""
    return (len(pattern) - len(pattern.rstrip("\\"))) % 2 == 1


def _refuse(column: Column[Any], value: Any, why: str) -> None:
    table = getattr(column.table, "name", "?")
    raise QueryError(f"{table}.{column.name}: {why} ({type(value).__name__} {value!r:.60})")


def _check_binary(expr: BinaryExpression[Any]) -> None:
    column = expr.left
    if not isinstance(column, Column):
        return
    field = column.info.get(FIELD_INFO)
    if field is None:
        return
    op = expr.operator
    if op in _COMPARISONS:
        for bind in _binds(expr.right):
            for value in _values(bind):
                if value is None:
                    continue
                try:
                    coerced = field.query_value(value)
                except ValueError as exc:
                    _refuse(column, value, str(exc))
                if coerced is not value and coerced != value:
                    # Converting would change the caller's expression: where(name=value) converts.
                    _refuse(column, value, f"expected {field.type_label}; where({column.name}=...) converts text")
    elif op in _PATTERNS:
        for bind in _binds(expr.right):
            for value in _values(bind):
                if not isinstance(value, str):
                    _refuse(column, value, "a pattern must be a str")
                if op in _LIKES and expr.modifiers.get("escape") is None and _dangling_escape(value):
                    # PostgreSQL refuses it, MariaDB takes the backslash literally: one answer.
                    _refuse(column, value, "a LIKE pattern may not end with its escape character \\")
    elif op in _JSON_PATHS:
        for bind in _binds(expr.right):
            for value in _values(bind):
                steps = value if isinstance(value, (list, tuple)) else [value]
                for step in steps:
                    if isinstance(step, bool) or not isinstance(step, (str, int)):
                        _refuse(column, value, "a JSON path step must be a str or an int")
                    if isinstance(step, int) and not -(2**31) <= step < 2**31:
                        _refuse(column, value, "a JSON array index out of range")


def check_condition(condition: ClauseElement) -> None:
    """Refuse with `QueryError` a condition whose visible values cannot be compared to their columns."""
    if (
        isinstance(condition, BinaryExpression)
        and isinstance(condition.right, BindParameter)
        and isinstance(condition.left, Column)
    ):
        # The common shape (column == value): no walk over the tree.
        _check_binary(condition)
        _check_text(condition.right)
        return
    _walk(condition)


def _walk(element: Any) -> None:
    # Down to the bound values, never into columns or tables (whose children are not values):
    # a tenth of the cost of a full traversal.
    if isinstance(element, BindParameter):
        _check_text(element)
        return
    if isinstance(element, (ColumnClause, FromClause)):
        return
    if isinstance(element, BinaryExpression):
        _check_binary(element)
    for child in element.get_children():
        _walk(child)


def _check_text(bind: BindParameter[Any]) -> None:
    for value in _values(bind) if bind.expanding else [bind.effective_value]:
        if isinstance(value, str) and "\x00" in value:
            raise QueryError(f"a query value may not contain NUL characters ({value!r:.60})")


__all__ = ["FIELD_INFO", "check_condition"]
