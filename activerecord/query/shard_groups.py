"""Column reads and GROUP BY over every shard: what each shard is asked, and how the answers merge.

A group can have rows on several shards, so each shard returns partial aggregates per group
(COUNT, SUM, MIN, MAX; AVG as SUM and COUNT) without HAVING, ORDER BY or LIMIT, and the merge
combines them per group, then applies HAVING, ORDER BY and LIMIT/OFFSET to the merged groups.
What cannot be merged exactly (COUNT(DISTINCT), window functions, aggregates inside other
expressions, conditions this module cannot evaluate) raises `QueryError` before any SQL: never
a wrong number.

Reads without aggregates or groups are rows: each shard is asked for its first OFFSET + LIMIT
rows in the query's order, and the rows are merged in that order.

Everything here is pure: `plan` builds, `Plan.merge` combines what the shards returned.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, func
from sqlalchemy.sql import operators, visitors
from sqlalchemy.sql.elements import (
    BinaryExpression,
    BindParameter,
    BooleanClauseList,
    ClauseElement,
    ColumnClause,
    FunctionFilter,
    Grouping,
    Label,
    Null,
    Over,
    UnaryExpression,
    WithinGroup,
)
from sqlalchemy.sql.functions import FunctionElement

from ..dialects import backend_for
from ..errors import QueryError
from .base import column_of

if TYPE_CHECKING:
    from .query import Query

#: The aggregates whose per-shard results combine exactly.
MERGEABLE = frozenset({"count", "sum", "min", "max", "avg"})
#: Other aggregates of the backends: refused, their partial results do not combine.
_OTHER_AGGREGATES = frozenset(
    {
        "array_agg",
        "bit_and",
        "bit_or",
        "bit_xor",
        "bool_and",
        "bool_or",
        "every",
        "group_concat",
        "json_agg",
        "json_arrayagg",
        "json_group_array",
        "json_group_object",
        "json_objectagg",
        "jsonb_agg",
        "mode",
        "percentile_cont",
        "percentile_disc",
        "std",
        "stddev",
        "stddev_pop",
        "stddev_samp",
        "string_agg",
        "total",
        "var_pop",
        "var_samp",
        "variance",
    }
)

_COMPARISONS: dict[Any, Callable[[Any, Any], bool]] = {
    operators.eq: lambda a, b: bool(a == b),
    operators.ne: lambda a, b: bool(a != b),
    operators.lt: lambda a, b: bool(a < b),
    operators.le: lambda a, b: bool(a <= b),
    operators.gt: lambda a, b: bool(a > b),
    operators.ge: lambda a, b: bool(a >= b),
}

#: A merged group as the conditions and sort keys see it: its key values and aggregate values.
Env = tuple[tuple[Any, ...], list[Any]]


@dataclass(frozen=True)
class _Aggregate:
    kind: str  # one of MERGEABLE
    arg: ColumnElement[Any] | None  # None: COUNT(*)

    def same(self, other: _Aggregate) -> bool:
        if self.kind != other.kind or (self.arg is None) != (other.arg is None):
            return False
        return self.arg is None or other.arg is None or self.arg.compare(other.arg)


def _unlabel(expr: Any) -> Any:
    while isinstance(expr, (Label, Grouping)):
        expr = expr.element
    return expr


def _is_window_or_filter(element: Any) -> bool:
    return isinstance(element, (Over, FunctionFilter, WithinGroup))


def _is_aggregate_call(element: Any) -> bool:
    if _is_window_or_filter(element):
        return True
    if isinstance(element, FunctionElement):
        name = str(getattr(element, "name", "")).lower()
        return name in MERGEABLE or name in _OTHER_AGGREGATES
    return False


def _contains_aggregate(expr: Any) -> bool:
    return any(_is_aggregate_call(e) for e in visitors.iterate(expr))


def _parse_aggregate(expr: Any) -> _Aggregate | None:
    """The aggregate ``expr`` is, None when it has none; `QueryError` when it cannot be merged."""
    expr = _unlabel(expr)
    if not _contains_aggregate(expr):
        return None
    if _is_window_or_filter(expr):
        raise QueryError(
            f"on_all_shards() cannot merge {expr} (window functions, FILTER and WITHIN GROUP "
            "need every row in one place): run it per shard with using()"
        )
    name = str(getattr(expr, "name", "")).lower() if isinstance(expr, FunctionElement) else ""
    if name not in MERGEABLE:
        raise QueryError(
            f"on_all_shards() merges count, sum, min, max and avg, each of a column, not {expr}: "
            "compute other expressions from the merged values"
        )
    args = list(expr.clauses)
    if name == "count" and (not args or (len(args) == 1 and isinstance(args[0], ColumnClause) and args[0].is_literal)):
        return _Aggregate("count", None)
    if len(args) != 1:
        raise QueryError(f"on_all_shards() cannot merge {expr}: one argument expected")
    (arg,) = args
    if isinstance(arg, UnaryExpression) and operators.distinct_op in (arg.operator, arg.modifier):
        raise QueryError(
            f"on_all_shards() cannot merge {expr}: a value can sit on several shards, so DISTINCT "
            "counts do not add up; group by the column and count the merged groups instead"
        )
    if _contains_aggregate(arg):
        raise QueryError(f"on_all_shards() cannot merge {expr}: an aggregate inside an aggregate")
    return _Aggregate(name, arg)


def _sort_parts(element: Any) -> tuple[Any, bool, bool | None]:
    """(expression, descending, nulls_first or None for the backend's default) of an ORDER BY key."""
    descending = False
    nulls_first: bool | None = None
    while isinstance(element, UnaryExpression) and element.modifier in (
        operators.desc_op,
        operators.asc_op,
        operators.nulls_first_op,
        operators.nulls_last_op,
    ):
        if element.modifier is operators.desc_op:
            descending = True
        elif element.modifier is operators.nulls_first_op:
            nulls_first = True
        elif element.modifier is operators.nulls_last_op:
            nulls_first = False
        element = element.element
    return element, descending, nulls_first


def compare(a: Any, b: Any, descending: bool, nulls_first: bool | None, null_is_large: bool) -> int:
    """-1, 0 or 1: how ``a`` sorts against ``b`` for one sort key, NULLs placed as the backend does."""
    if a == b:
        return 0
    if a is None or b is None:
        first = nulls_first
        if first is None:
            first = (not null_is_large) != descending
        return -1 if (a is None) == first else 1
    result = -1 if a < b else 1
    return -result if descending else result


@dataclass
class Plan:
    """What each shard is asked (`labels`) and how its answers merge (`merge`)."""

    grouped: bool
    groups: list[Any] = field(default_factory=list)
    aggregates: list[_Aggregate] = field(default_factory=list)
    # (output name, ("g", index) | ("a", index) | ("r", label)) in output order.
    outputs: list[tuple[str, tuple[str, Any]]] = field(default_factory=list)
    having: list[Callable[[Env], bool | None]] = field(default_factory=list)
    # (reference as in outputs, descending, nulls_first).
    order: list[tuple[tuple[str, Any], bool, bool | None]] = field(default_factory=list)
    rows: dict[str, Any] = field(default_factory=dict)  # ungrouped: label -> row expression
    limit: int | None = None
    offset: int | None = None

    # -- building ---------------------------------------------------------------------------

    def _ref(self, expr: Any) -> tuple[str, Any] | None:
        """The group key or aggregate ``expr`` stands for (adding the aggregate), None if neither."""
        bare = _unlabel(expr)
        for i, group in enumerate(self.groups):
            if bare is group or (isinstance(bare, ClauseElement) and bare.compare(group)):
                return ("g", i)
        aggregate = _parse_aggregate(bare)
        if aggregate is None:
            return None
        for j, known in enumerate(self.aggregates):
            if known.same(aggregate):
                return ("a", j)
        self.aggregates.append(aggregate)
        return ("a", len(self.aggregates) - 1)

    def _grouped_ref(self, expr: Any, what: str) -> tuple[str, Any]:
        ref = self._ref(expr)
        if ref is None:
            raise QueryError(
                f"on_all_shards(): {what} {_unlabel(expr)} is neither a group_by() column nor "
                "count/sum/min/max/avg of a column"
            )
        return ref

    def _condition(self, expr: Any) -> Callable[[Env], bool | None]:
        expr = _unlabel(expr)
        if isinstance(expr, BooleanClauseList) and expr.operator in (operators.and_, operators.or_):
            parts = [self._condition(c) for c in expr.clauses]
            return _and(parts) if expr.operator is operators.and_ else _or(parts)
        if isinstance(expr, BinaryExpression) and expr.operator in _COMPARISONS:
            test = _COMPARISONS[expr.operator]
            left, right = self._operand(expr.left), self._operand(expr.right)

            def compared(env: Env) -> bool | None:
                a, b = left(env), right(env)
                return None if a is None or b is None else test(a, b)  # SQL: NULL compares unknown

            return compared
        raise QueryError(
            f"on_all_shards() cannot apply HAVING {expr} to merged groups: use comparisons "
            "(==, !=, <, <=, >, >=) of grouped columns, count/sum/min/max/avg and values, "
            "combined with and_()/or_()"
        )

    def _operand(self, expr: Any) -> Callable[[Env], Any]:
        expr = _unlabel(expr)
        if isinstance(expr, BindParameter):
            value = expr.effective_value
            return lambda env: value
        if isinstance(expr, Null):
            return lambda env: None
        kind, index = self._grouped_ref(expr, "HAVING operand")
        if kind == "g":
            return lambda env: env[0][index]
        return lambda env: env[1][index]

    # -- per shard ----------------------------------------------------------------------------

    def labels(self) -> dict[str, Any]:
        """The labeled columns each shard selects (``Query.values(**labels)``)."""
        if not self.grouped:
            return dict(self.rows)
        labels: dict[str, Any] = {f"_ar_g{i}": group for i, group in enumerate(self.groups)}
        for j, agg in enumerate(self.aggregates):
            if agg.kind == "avg":
                labels[f"_ar_a{j}"] = func.sum(agg.arg)
                labels[f"_ar_c{j}"] = func.count(agg.arg)
            elif agg.kind == "count":
                labels[f"_ar_a{j}"] = func.count() if agg.arg is None else func.count(agg.arg)
            else:
                labels[f"_ar_a{j}"] = getattr(func, agg.kind)(agg.arg)
        return labels

    def shard_query(self, query: Query[Any]) -> Query[Any]:
        """The query each shard runs: grouped, without HAVING, ORDER BY, LIMIT and OFFSET (they
        apply to the merged groups); ungrouped, with LIMIT raised to cover OFFSET + LIMIT."""
        per_shard = query._copy()
        per_shard._offset = None
        if self.grouped:
            per_shard._order_by = ()
            per_shard._limit = None
            if per_shard._ext is not None:
                per_shard._ext = replace(per_shard._ext, having=())
        elif query._limit is not None:
            per_shard._limit = query._limit + (query._offset or 0)
        return per_shard

    # -- merging ------------------------------------------------------------------------------

    def merge(self, parts: Sequence[Sequence[dict[str, Any]]], backend: str) -> list[tuple[Any, ...]]:
        """The output rows (tuples in output order) from every shard's answer, merged."""
        # Each backend's own NULL placement (PostgreSQL sorts NULL as larger than any value).
        null_is_large = backend_for(backend).nulls_sort_large
        envs = self._merge_groups(parts) if self.grouped else [((), [row]) for part in parts for row in part]
        if self.order:

            def cmp(a: Env, b: Env) -> int:
                return self._compare(a, b, null_is_large)

            envs.sort(key=functools.cmp_to_key(cmp))
        start = self.offset or 0
        end = None if self.limit is None else start + self.limit
        return [tuple(self._value(env, ref) for _, ref in self.outputs) for env in envs[start:end]]

    def _merge_groups(self, parts: Sequence[Sequence[dict[str, Any]]]) -> list[Env]:
        states: dict[tuple[Any, ...], list[Any]] = {}
        width = len(self.groups)
        for part in parts:
            for row in part:
                key = tuple(row[f"_ar_g{i}"] for i in range(width))
                state = states.get(key)
                if state is None:
                    state = states[key] = [None if a.kind != "avg" else (None, 0) for a in self.aggregates]
                for j, agg in enumerate(self.aggregates):
                    state[j] = _combine(agg.kind, state[j], row[f"_ar_a{j}"], row.get(f"_ar_c{j}"))
        envs = [
            (key, [_final(a.kind, s) for a, s in zip(self.aggregates, state, strict=True)])
            for key, state in states.items()
        ]
        return [env for env in envs if all(test(env) is True for test in self.having)]

    def _value(self, env: Env, ref: tuple[str, Any]) -> Any:
        kind, index = ref
        if kind == "g":
            return env[0][index]
        if kind == "a":
            return env[1][index]
        return env[1][0][index]  # an ungrouped row, by label

    def _compare(self, a: Env, b: Env, null_is_large: bool) -> int:
        for ref, descending, nulls_first in self.order:
            result = compare(self._value(a, ref), self._value(b, ref), descending, nulls_first, null_is_large)
            if result:
                return result
        return 0


def _combine(kind: str, state: Any, value: Any, count: Any) -> Any:
    if kind == "avg":
        total, n = state
        if value is not None:
            total = value if total is None else total + value
        return total, n + int(count or 0)
    if kind == "count":
        return (state or 0) + int(value or 0)
    if value is None:
        return state
    if state is None:
        return value
    if kind == "sum":
        return state + value
    return min(state, value) if kind == "min" else max(state, value)


def _final(kind: str, state: Any) -> Any:
    if kind == "avg":
        total, n = state
        return None if total is None or n == 0 else total / n
    if kind == "count":
        return state or 0
    return state


def _and(parts: list[Callable[[Env], bool | None]]) -> Callable[[Env], bool | None]:
    def test(env: Env) -> bool | None:
        results = [p(env) for p in parts]
        if False in results:
            return False
        return None if None in results else True

    return test


def _or(parts: list[Callable[[Env], bool | None]]) -> Callable[[Env], bool | None]:
    def test(env: Env) -> bool | None:
        results = [p(env) for p in parts]
        if True in results:
            return True
        return None if None in results else False

    return test


def plan(query: Query[Any], columns: Sequence[Any], labeled: dict[str, Any], *, pluck: bool = False) -> Plan:
    """The plan of ``query.values(*columns, **labeled)`` (or ``pluck(*columns)``) over every shard.

    Grouped when the query has GROUP BY or HAVING or an output is an aggregate: each output
    must then be a grouped column or count/sum/min/max/avg of a column. `QueryError` for what
    cannot be merged.
    """
    model = query._model
    ext = query._ext
    if ext is not None and ext.distinct:
        raise QueryError("on_all_shards() does not merge distinct(): group_by() the columns instead")
    resolved = [column_of(model, c) for c in columns]
    outputs = [(str(getattr(_unlabel(c), "name", f"_ar_{i}")), c) for i, c in enumerate(resolved)]
    outputs += [(name, column_of(model, expr)) for name, expr in labeled.items()]
    if not outputs and not pluck:
        outputs = [(c.name, c) for c in model.__table__.c]
    groups = list(ext.group_by) if ext is not None else []
    having = list(ext.having) if ext is not None else []
    grouped = bool(groups or having) or any(_contains_aggregate(expr) for _, expr in outputs)
    result = Plan(grouped=grouped, groups=groups, limit=query._limit, offset=query._offset)
    if grouped:
        result.outputs = [(name, result._grouped_ref(expr, "column")) for name, expr in outputs]
        result.having = [result._condition(condition) for condition in having]
        for key in query._order_by:
            expr, descending, nulls_first = _sort_parts(key)
            result.order.append((result._grouped_ref(expr, "ORDER BY key"), descending, nulls_first))
        return result
    for i, (name, expr) in enumerate(outputs):
        result.rows[f"_ar_o{i}"] = expr
        result.outputs.append((name, ("r", f"_ar_o{i}")))
    for i, key in enumerate(query._order_by):
        expr, descending, nulls_first = _sort_parts(key)
        result.rows[f"_ar_s{i}"] = expr
        result.order.append((("r", f"_ar_s{i}"), descending, nulls_first))
    return result
