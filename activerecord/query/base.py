"""What a query holds (model, conditions, order, limits, connection, optional extras) and the
Core statement it stands for: the base the query builders and terminals share.

Building is pure: nothing here runs SQL.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Generic, Self, TypeVar

from sqlalchemy import ColumnElement, Select, select
from sqlalchemy.sql.expression import ClauseElement

from ..connections.manager import ConnectionManager
from ..errors import QueryError
from . import eager as _eager
from . import targets as _targets

M = TypeVar("M")


@dataclass(frozen=True)
class Extras:
    """The optional parts of one query (immutable: builders make a changed copy)."""

    includes: tuple[str, ...] = ()
    join_includes: tuple[str, ...] = ()
    joins: tuple[tuple[str, bool], ...] = ()
    group_by: tuple[Any, ...] = ()
    having: tuple[ColumnElement[bool], ...] = ()
    distinct: bool = False
    for_update: dict[str, Any] | None = None
    # Soft-delete scope: "live" hides deleted rows, "deleted" shows only them, "all" both.
    scope: str = "all"
    tree: dict[str, Any] = field(default_factory=dict, compare=False)

    def scope_conditions(self, model: Any) -> tuple[ColumnElement[bool], ...]:
        """The conditions of the soft-delete scope."""
        if self.scope == "live":
            return _eager.live(model)
        if self.scope == "deleted":
            return (model.__table__.c[model._ar_soft].is_not(None),)
        return ()

    @property
    def shapes_rows(self) -> bool:
        """Whether rows are joined, grouped or made distinct (so counts need a subquery)."""
        return bool(self.joins or self.group_by or self.distinct or self.having)

    def apply(self, model: Any, stmt: Select[Any]) -> Select[Any]:
        """``stmt`` (the plain select of ``model``) with these parts added."""
        conditions = self.scope_conditions(model)
        if conditions:
            stmt = stmt.where(*conditions)
        if self.joins or self.join_includes:
            source: Any = _eager.join_from(model, model.__table__, self.joins)
            if self.join_includes:
                rels = [_eager.relation(model, n) for n in self.join_includes]
                source, columns = _eager.include_joins(model, source, rels)
                stmt = stmt.add_columns(*columns)
            stmt = stmt.select_from(source)
        if self.group_by:
            stmt = stmt.group_by(*self.group_by)
        if self.having:
            stmt = stmt.having(*self.having)
        if self.distinct:
            stmt = stmt.distinct()
        if self.for_update is not None:
            # Lock the model's rows only: PostgreSQL refuses to lock the nullable side of the
            # outer joins that load to-one relations (dialects without FOR UPDATE OF drop it).
            of = model.__table__ if self.join_includes else None
            stmt = stmt.with_for_update(of=of, **self.for_update)
        return stmt


class QueryBase(Generic[M]):
    """The state of a query for records of one model, and its statement.

    Every builder copies it (`_copy`) and changes the copy: a query is never changed in place.
    """

    __slots__ = ("_conds", "_ext", "_limit", "_model", "_offset", "_order_by", "_pk", "_role", "_using")

    def __init__(self, model: type[M]) -> None:
        self._model: Any = model
        self._conds: tuple[ColumnElement[bool], ...] | None = ()
        self._order_by: tuple[Any, ...] = ()
        self._limit: int | None = None
        self._offset: int | None = None
        self._using: str | None = None
        # Joins, eager loads, aggregates, scopes (see `Extras`); the model's default scope.
        self._ext: Extras | None = getattr(model, "_ar_default_ext", None)
        self._role: str | None = None
        # The primary key of a ``find_by_id`` query while its only condition is that key: its
        # terminals then run the model's prebuilt statement instead of building one.
        self._pk: Any = _NO_PK

    @classmethod
    def _by_pk(cls, model: type[M], pk: Any) -> Self:
        """``find_by_id``: the pk condition is built only if something needs it (`_where`)."""
        new = object.__new__(cls)
        new._model = model
        new._conds = None
        new._order_by = ()
        new._limit = None
        new._offset = None
        new._using = None
        new._ext = getattr(model, "_ar_default_ext", None)
        new._role = None
        new._pk = pk
        return new

    @property
    def _where(self) -> tuple[ColumnElement[bool], ...]:
        """The conditions; a `_by_pk` query builds its pk condition only when something asks."""
        conds = self._conds
        if conds is None:
            model = self._model
            conds = self._conds = (model.__table__.c[model._ar_pk] == self._pk,)
        return conds

    @_where.setter
    def _where(self, conditions: tuple[ColumnElement[bool], ...]) -> None:
        self._conds = conditions

    @property
    def _plain_pk(self) -> bool:
        """Whether this is a bare primary-key lookup (no scope, sort, limit or offset added)."""
        return (
            self._pk is not _NO_PK
            and self._ext is None
            and self._limit is None
            and self._offset is None
            and not self._order_by
        )

    def _copy(self) -> Self:
        new = object.__new__(type(self))
        new._model = self._model
        new._conds = self._conds
        new._order_by = self._order_by
        new._limit = self._limit
        new._offset = self._offset
        new._using = self._using
        new._ext = self._ext
        new._role = self._role
        new._pk = self._pk
        return new

    def _and(self, *conditions: ColumnElement[bool]) -> Self:
        """A copy with ``conditions`` added (ANDed)."""
        new = self._copy()
        new._where = self._where + conditions
        new._pk = _NO_PK
        return new

    def _extended(self, **changes: Any) -> Self:
        """A copy with the given `Extras` fields changed."""
        new = self._copy()
        new._ext = replace(self._ext or Extras(), **changes)
        return new

    @property
    def connection_name(self) -> str:
        """The connection this query runs on (for a sharded model, the shard its key selects)."""
        name = self._using or self._model.__connection__
        if self._role is None and not ConnectionManager.is_shard_group(name):
            return name  # the common case, without building the WHERE of a pk lookup
        return _targets.query_target(self._model, self._using, self._role, self._where)

    @property
    def statement(self) -> Select[Any]:
        """The Core ``Select`` this query stands for."""
        stmt = select(self._model.__table__)
        if self._where:
            stmt = stmt.where(*self._where)
        if self._order_by:
            stmt = stmt.order_by(*self._order_by)
        if self._limit is not None:
            stmt = stmt.limit(self._limit)
        if self._offset is not None:
            stmt = stmt.offset(self._offset)
        if self._ext is not None:
            stmt = self._ext.apply(self._model, stmt)
        return stmt


#: `QueryBase._pk` of a query that is not a bare primary-key lookup.
_NO_PK: Any = object()


__all__ = ["Extras", "QueryBase", "column_of"]


def column_of(model: Any, column: Any) -> Any:
    """A field name of ``model`` as its column; an SQL expression as it is; `QueryError` for
    anything else (checked before any SQL)."""
    if isinstance(column, str):
        if column not in model.__table__.c:
            raise QueryError(f"{model.__name__} has no field {column!r}")
        return model.__table__.c[column]
    if not isinstance(column, ClauseElement):
        raise QueryError(f"expected a column or a field name, not {column!r}")
    return column
