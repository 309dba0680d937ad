"""Queries over every shard of a group: run on each shard, merged into one answer.

``User.find().on_all_shards()`` runs on each shard concurrently (async: gathered; sync: on the
bounded thread pool of `fanout`) and merges:
rows are ordered globally by the query's ORDER BY, LIMIT/OFFSET apply to the merged rows,
``count`` adds up, ``sum``/``min``/``max``/``avg`` combine per-shard partial results.
Grouped reads (``group_by`` with ``values``/``pluck``/``count``) merge group by group, as
planned in `shard_groups`.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from sqlalchemy import Column, ColumnElement, Select, func
from sqlalchemy.sql import operators
from sqlalchemy.sql.elements import UnaryExpression

from ..connections import execute as _execute
from ..connections.manager import ConnectionManager
from ..dialects import backend_for
from ..engine import operations as _operations
from ..errors import QueryError, ShardQueryError
from . import fanout as _fanout
from . import shard_groups as _groups

if TYPE_CHECKING:
    from .query import Query

M = TypeVar("M")
T = TypeVar("T")

log = logging.getLogger("activerecord.shards")


def _sort_key_parts(element: Any) -> tuple[Column[Any], bool, bool | None]:
    """(column, descending, nulls_first or None for the backend's default) of one ORDER BY key."""
    descending = False
    nulls_first: bool | None = None
    while isinstance(element, UnaryExpression):
        modifier = element.modifier
        if modifier is operators.desc_op:
            descending = True
        elif modifier is operators.nulls_first_op:
            nulls_first = True
        elif modifier is operators.nulls_last_op:
            nulls_first = False
        elif modifier is not operators.asc_op:
            break
        element = element.element
    if not isinstance(element, Column):
        raise QueryError(
            "on_all_shards() merges ORDER BY on the model's own columns only "
            f"(got {element!r}); order by a column, .asc() or .desc()"
        )
    return element, descending, nulls_first


def _merge_sorted(rows: list[Any], order_by: Sequence[Any], backend: str) -> list[Any]:
    keys = [_sort_key_parts(k) for k in order_by]
    # Each backend's own NULL placement, so the merge agrees with the order every shard used:
    # PostgreSQL treats NULL as larger than any value, SQLite and MySQL/MariaDB as smaller.
    null_is_large = backend_for(backend).nulls_sort_large

    def compare(a: Any, b: Any) -> int:
        for column, descending, nulls_first in keys:
            x, y = getattr(a, column.key), getattr(b, column.key)
            if x == y:
                continue
            if x is None or y is None:
                first = nulls_first
                if first is None:
                    first = (not null_is_large) != descending
                return -1 if (x is None) == first else 1
            result = -1 if x < y else 1
            return -result if descending else result
        return 0

    return sorted(rows, key=functools.cmp_to_key(compare))


class AllShardsQuery(Generic[M]):
    """A query run on every shard of its model's shard group, with the results merged.

    Made by ``Query.on_all_shards()``. Builders (``where``, ``order_by``, ``limit``, ...) work as
    on `Query`. With ``skip_failed=True`` a failing shard is logged and left out instead of
    raising `ShardQueryError`.
    """

    def __init__(self, query: Query[M], *, skip_failed: bool = False) -> None:
        self._query = query
        self.skip_failed = skip_failed

    def __repr__(self) -> str:
        return f"<AllShardsQuery {self._query!r}>"

    def _wrap(self, query: Query[M]) -> AllShardsQuery[M]:
        return AllShardsQuery(query, skip_failed=self.skip_failed)

    # -- building -----------------------------------------------------------------------------

    def where(self, *conditions: ColumnElement[bool], **equals: Any) -> AllShardsQuery[M]:
        """`Query.where`, on every shard."""
        return self._wrap(self._query.where(*conditions, **equals))

    def order_by(self, *columns: Any) -> AllShardsQuery[M]:
        """`Query.order_by`; the merged rows follow it too."""
        return self._wrap(self._query.order_by(*columns))

    def limit(self, n: int | None) -> AllShardsQuery[M]:
        """At most ``n`` records of the merged result."""
        return self._wrap(self._query.limit(n))

    def offset(self, n: int | None) -> AllShardsQuery[M]:
        """Skip the first ``n`` records of the merged result."""
        return self._wrap(self._query.offset(n))

    def group_by(self, *columns: Any) -> AllShardsQuery[M]:
        """`Query.group_by`: groups merged over every shard (read them with `values`/`pluck`)."""
        return self._wrap(self._query.group_by(*columns))

    def having(self, *conditions: Any) -> AllShardsQuery[M]:
        """`Query.having`, applied to the merged groups."""
        return self._wrap(self._query.having(*conditions))

    def using_read_replica(self) -> AllShardsQuery[M]:
        """Read each shard from its replicas."""
        return self._wrap(self._query.using_read_replica())

    def using_primary(self) -> AllShardsQuery[M]:
        """Read each shard from its primary."""
        return self._wrap(self._query.using_primary())

    # -- running ------------------------------------------------------------------------------

    @property
    def group(self) -> str:
        """The shard group this query spans."""
        model = self._query._model
        name: str = self._query._using or model.__connection__
        if not ConnectionManager.is_shard_group(name):
            raise QueryError(f"on_all_shards(): {model.__name__} is on {name!r}, which is not a shard group")
        return name

    @property
    def shards(self) -> list[str]:
        """The shards it runs on, in configured order."""
        return ConnectionManager.shards(self.group)

    def _on(self, shard: str) -> Query[M]:
        return self._query.using(shard)

    def _collect(self, results: dict[str, Any]) -> list[Any]:
        errors = {s: r for s, r in results.items() if isinstance(r, BaseException)}
        if errors:
            if not self.skip_failed:
                raise ShardQueryError(errors) from next(iter(errors.values()))
            for shard, exc in errors.items():
                log.warning("shard %s left out of an on_all_shards() query: %s: %s", shard, type(exc).__name__, exc)
        return [r for r in results.values() if not isinstance(r, BaseException)]

    def _each(self, fn: Callable[[Query[M]], T]) -> list[T]:
        shards = self.shards
        outcomes = _fanout.each(shards, lambda shard: fn(self._on(shard)))
        return self._collect(dict(zip(shards, outcomes, strict=True)))

    async def _aeach(self, fn: Callable[[Query[M]], Awaitable[T]]) -> list[T]:
        shards = self.shards
        outcomes = await asyncio.gather(*(fn(self._on(s)) for s in shards), return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, BaseException) and not isinstance(outcome, Exception):
                raise outcome  # cancellation and the like are not a shard's failure
        return self._collect(dict(zip(shards, outcomes, strict=True)))

    def _per_shard(self) -> Query[M]:
        # Every shard must return enough rows to cover OFFSET + LIMIT of the merged result.
        q = self._query
        limit = None if q._limit is None else q._limit + (q._offset or 0)
        return q.limit(limit).offset(None)

    def _merge(self, parts: list[list[M]]) -> list[M]:
        q = self._query
        rows = [row for part in parts for row in part]
        if q._order_by:
            rows = _merge_sorted(rows, q._order_by, ConnectionManager.backend(self.group))
        start = q._offset or 0
        end = None if q._limit is None else start + q._limit
        return rows[start:end]

    def all(self) -> list[M]:
        """Every matching record of every shard, merged."""
        per_shard = self._per_shard()
        return self._merge(self._each_query(per_shard, lambda q: q.all()))

    async def aall(self) -> list[M]:
        """`all` (async; the shards are queried concurrently)."""
        per_shard = self._per_shard()
        return self._merge(await self._aeach_query(per_shard, lambda q: q.aall()))

    def _each_query(self, query: Query[M], fn: Callable[[Query[M]], T]) -> list[T]:
        return AllShardsQuery(query, skip_failed=self.skip_failed)._each(fn)

    async def _aeach_query(self, query: Query[M], fn: Callable[[Query[M]], Awaitable[T]]) -> list[T]:
        return await AllShardsQuery(query, skip_failed=self.skip_failed)._aeach(fn)

    def first(self) -> M | None:
        """The first record of the merged order, or None."""
        found = self.limit(1).all()
        return found[0] if found else None

    async def afirst(self) -> M | None:
        """`first` (async)."""
        found = await self.limit(1).aall()
        return found[0] if found else None

    def _limited_count(self, total: int) -> int:
        q = self._query
        total = max(0, total - (q._offset or 0))
        return total if q._limit is None else min(total, q._limit)

    @property
    def _grouped(self) -> bool:
        ext = self._query._ext
        return ext is not None and bool(ext.group_by or ext.having)

    def count(self) -> int:
        """How many records match over every shard; of a grouped query, how many merged groups."""
        if self._grouped:
            return len(self._merged(self._plan((), {}, pluck=True)))
        unlimited = self._query.limit(None).offset(None)
        return self._limited_count(sum(self._each_query(unlimited, lambda q: q.count())))

    async def acount(self) -> int:
        """`count` (async)."""
        if self._grouped:
            return len(await self._amerged(self._plan((), {}, pluck=True)))
        unlimited = self._query.limit(None).offset(None)
        return self._limited_count(sum(await self._aeach_query(unlimited, lambda q: q.acount())))

    def exists(self) -> bool:
        """Whether any shard has a matching record (of a grouped query: any merged group)."""
        if self._grouped:
            return self.count() > 0
        return any(self._each(lambda q: q.exists()))

    async def aexists(self) -> bool:
        """`exists` (async)."""
        if self._grouped:
            return await self.acount() > 0
        return any(await self._aeach(lambda q: q.aexists()))

    # -- columns and groups -------------------------------------------------------------------

    def _plan(self, columns: Sequence[Any], labeled: dict[str, Any], *, pluck: bool = False) -> _groups.Plan:
        return _groups.plan(self._query, columns, labeled, pluck=pluck)

    def _merged(self, plan: _groups.Plan) -> list[tuple[Any, ...]]:
        labels = plan.labels()
        parts = self._each_query(plan.shard_query(self._query), lambda q: q.values(**labels))
        return plan.merge(parts, ConnectionManager.backend(self.group))

    async def _amerged(self, plan: _groups.Plan) -> list[tuple[Any, ...]]:
        labels = plan.labels()
        parts = await self._aeach_query(plan.shard_query(self._query), lambda q: q.avalues(**labels))
        return plan.merge(parts, ConnectionManager.backend(self.group))

    def values(self, *columns: Any, **labeled: Any) -> list[dict[str, Any]]:
        """`Query.values` over every shard, merged.

        Grouped (``group_by``/``having``, or aggregates among the columns): count, sum, min,
        max and avg are combined per group, then HAVING, ORDER BY and LIMIT/OFFSET apply to the
        merged groups. Otherwise rows merge as in `all`. What cannot be merged exactly raises
        `QueryError`.

        >>> User.find().on_all_shards().group_by(User.region).values(User.region, n=func.count())
        """
        plan = self._plan(columns, labeled)
        names = [name for name, _ in plan.outputs]
        return [dict(zip(names, row, strict=True)) for row in self._merged(plan)]

    async def avalues(self, *columns: Any, **labeled: Any) -> list[dict[str, Any]]:
        """`values` (async; the shards are queried concurrently)."""
        plan = self._plan(columns, labeled)
        names = [name for name, _ in plan.outputs]
        return [dict(zip(names, row, strict=True)) for row in await self._amerged(plan)]

    def pluck(self, *columns: Any) -> list[Any]:
        """`Query.pluck` over every shard, merged as `values` merges."""
        if not columns:
            raise QueryError("pluck() needs at least one column")
        rows = self._merged(self._plan(columns, {}, pluck=True))
        return [row[0] for row in rows] if len(columns) == 1 else rows

    async def apluck(self, *columns: Any) -> list[Any]:
        """`pluck` (async)."""
        if not columns:
            raise QueryError("pluck() needs at least one column")
        rows = await self._amerged(self._plan(columns, {}, pluck=True))
        return [row[0] for row in rows] if len(columns) == 1 else rows

    # -- aggregates ---------------------------------------------------------------------------

    def _aggregate_stmt(self, column: Any) -> Select[Any]:
        q = self._query
        if q._limit is not None or q._offset is not None:
            raise QueryError("on_all_shards() aggregates apply to every matching row: remove limit/offset")
        ext = q._ext
        if ext is not None and (ext.group_by or ext.having or ext.distinct):
            raise QueryError(
                "on_all_shards() sum/min/max/avg read plain rows: for groups use "
                "values(column, total=func.sum(...)) after group_by()"
            )
        if isinstance(column, str):
            table = q._model.__table__
            if column not in table.c:
                raise QueryError(f"{q._model.__name__} has no field {column!r}")
            column = table.c[column]
        # The query's own statement, so its scope (soft delete) and joins apply as in count().
        partials = (func.sum(column), func.min(column), func.max(column), func.count(column))
        return q.statement.order_by(None).with_only_columns(*partials, maintain_column_froms=True)

    def _partials(self, column: Any) -> list[Any]:
        stmt = self._aggregate_stmt(column)
        return self._each(lambda q: _execute.run(q.connection_name, False, _operations.fetch_row, stmt))

    async def _apartials(self, column: Any) -> list[Any]:
        stmt = self._aggregate_stmt(column)
        return await self._aeach(lambda q: _execute.arun(q.connection_name, False, _operations.fetch_row, stmt))

    def sum(self, column: Any) -> Any:
        """The sum of ``column`` (a column or field name) over every shard; None when no row has a value."""
        return _combine_sum(self._partials(column))

    async def asum(self, column: Any) -> Any:
        """`sum` (async)."""
        return _combine_sum(await self._apartials(column))

    def min(self, column: Any) -> Any:
        """The smallest value of ``column`` over every shard (None when there is none)."""
        return _combine(self._partials(column), 1, min)

    async def amin(self, column: Any) -> Any:
        """`min` (async)."""
        return _combine(await self._apartials(column), 1, min)

    def max(self, column: Any) -> Any:
        """The largest value of ``column`` over every shard (None when there is none)."""
        return _combine(self._partials(column), 2, max)

    async def amax(self, column: Any) -> Any:
        """`max` (async)."""
        return _combine(await self._apartials(column), 2, max)

    def avg(self, column: Any) -> Any:
        """The mean of ``column`` over every shard: total sum / total count of non-NULL values."""
        return _combine_avg(self._partials(column))

    async def aavg(self, column: Any) -> Any:
        """`avg` (async)."""
        return _combine_avg(await self._apartials(column))

    # -- bulk writes --------------------------------------------------------------------------

    def update_all(self, **values: Any) -> int:
        """`Query.update_all` on every shard (one transaction per shard, not one for all)."""
        return sum(self._each(lambda q: q.update_all(**values)))

    async def aupdate_all(self, **values: Any) -> int:
        """`update_all` (async)."""
        return sum(await self._aeach(lambda q: q.aupdate_all(**values)))

    def delete_all(self) -> int:
        """`Query.delete_all` on every shard (one transaction per shard, not one for all)."""
        return sum(self._each(lambda q: q.delete_all()))

    async def adelete_all(self) -> int:
        """`delete_all` (async)."""
        return sum(await self._aeach(lambda q: q.adelete_all()))


def _combine_sum(rows: list[Any]) -> Any:
    values = [r[0] for r in rows if r is not None and r[0] is not None]
    return sum(values[1:], values[0]) if values else None


def _combine(rows: list[Any], index: int, pick: Callable[[list[Any]], Any]) -> Any:
    values = [r[index] for r in rows if r is not None and r[index] is not None]
    return pick(values) if values else None


def _combine_avg(rows: list[Any]) -> Any:
    total = _combine_sum(rows)
    count = sum(int(r[3]) for r in rows if r is not None)
    if total is None or count == 0:
        return None
    return total / count
