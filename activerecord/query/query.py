"""Queries: a Core ``Select`` being built, plus terminals that run it in either mode.

Building is pure and generative: every builder returns a new query, the original is unchanged.
Terminals hand the finished statement to `engine.operations` through `connections.execute`.
The layers of the class: `QueryBase` (state and statement) < `QueryFeatures` (the surface
beyond filters and sorting) < `Query` (filters, sorting, routing and the terminals).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Generic, Self, TypeVar

from sqlalchemy import ColumnElement, Select, Table, exists, func, select
from sqlalchemy.sql.elements import UnaryExpression
from sqlalchemy.sql.expression import ClauseElement

from ..connections import execute as _execute
from ..connections.manager import ConnectionManager
from ..engine import operations as _operations
from ..errors import MultipleRecordsFound, QueryError, RecordNotFound
from ..multidb import routing as _routing
from . import extras as _query_ext
from . import pagination as _pagination
from .all_shards import AllShardsQuery
from .values import check_condition

if TYPE_CHECKING:
    from sqlalchemy import Connection


M = TypeVar("M")


class Query(_query_ext.QueryFeatures[M], Generic[M]):
    """A query for records of one model.

    >>> User.find().where(User.age >= 18).order_by(User.name).limit(10).all()
    >>> await User.find().where(name="ada").aone()
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return f"<Query {self._model.__name__}: {self.to_sql()}>"

    # -- building -----------------------------------------------------------------------------

    def where(self, *conditions: ColumnElement[bool], **equals: Any) -> Query[M]:
        """Add conditions (ANDed): boolean column expressions, or ``field=value`` for equality.

        Values are checked against their fields before any SQL (`QueryError` naming the field):
        ``field=value`` converts what converts without loss (``id="12"`` to 12) and refuses the
        rest; in expressions, comparisons of a model's column are checked (see `query.values`).

        >>> User.find().where(User.name.like("a%"), User.age >= 18, active=True)
        """
        for condition in conditions:
            if not isinstance(condition, ClauseElement):
                raise QueryError(
                    f"where() takes SQL expressions such as User.name == 'a', not "
                    f"{type(condition).__name__} {condition!r}"
                )
            check_condition(condition)
        return self._and(*conditions, *self._model._ar_where_kwargs(equals))

    def order_by(self, *columns: Any) -> Self:
        """Add sort keys: columns, ``User.name.desc()``, or field names (``"-name"`` for descending)."""
        keys = []
        table: Table = self._model.__table__
        for column in columns:
            if isinstance(column, str):
                descending = column.startswith("-")
                name = column[1:] if descending else column  # one "-" only: "--name" is no field
                if name not in self._model.__fields__:
                    raise QueryError(f"{self._model.__name__} has no field {name!r} to order by")
                keys.append(table.c[name].desc() if descending else table.c[name])
            else:
                keys.append(column)
        new = self._copy()
        new._order_by = self._order_by + tuple(keys)
        return new

    def limit(self, n: int | None) -> Self:
        """Return at most ``n`` records (an int from 0 to 2**63 - 1)."""
        _check_count("limit", n)
        new = self._copy()
        new._limit = n
        return new

    def offset(self, n: int | None) -> Self:
        """Skip the first ``n`` records (an int from 0 to 2**63 - 1)."""
        _check_count("offset", n)
        new = self._copy()
        new._offset = n
        return new

    def using(self, name: str) -> Self:
        """Run on connection ``name`` instead of the model's own ``__connection__``."""
        if not isinstance(name, str) or not name:
            raise QueryError(f"using() takes a connection name, not {name!r}")
        new = self._copy()
        new._using = name
        return new

    def using_read_replica(self) -> Self:
        """Read from a replica of the connection (the primary when none can serve the read).

        Inside a transaction the transaction's connection is used all the same; a write through
        this query raises `ReadOnlyError`.
        """
        new = self._copy()
        new._role = _routing.READING
        return new

    def using_primary(self) -> Self:
        """Read from the primary, even where reads would go to a replica."""
        new = self._copy()
        new._role = _routing.WRITING
        return new

    def on_all_shards(self, *, skip_failed: bool = False) -> AllShardsQuery[M]:
        """Run on every shard of the model's shard group and merge the results."""
        return AllShardsQuery(self, skip_failed=skip_failed)

    @property
    def _loader(self) -> Any:
        load = self._model._ar_loader(self._using)
        return load if self._ext is None else self._wrap_loader(load)

    def to_sql(self, *, literal: bool = False) -> str:
        """The SQL, in the dialect of this query's connection when it is configured.

        ``literal=True`` renders the parameter values inline (for reading, never for running).
        """
        name = self.connection_name
        dialect = ConnectionManager.engine(name).dialect if ConnectionManager.is_configured(name) else None
        compiled = self.statement.compile(dialect=dialect, compile_kwargs={"literal_binds": True} if literal else {})
        return str(compiled)

    # -- terminals ----------------------------------------------------------------------------

    def all(self) -> list[M]:
        """Every matching record."""
        return _execute.run(
            self.connection_name, False, self._fetch(_operations.fetch_all), self.statement, self._loader
        )

    async def aall(self) -> list[M]:
        """Every matching record (async)."""
        return await _execute.arun(
            self.connection_name, False, self._fetch(_operations.fetch_all), self.statement, self._loader
        )

    def first(self) -> M | None:
        """The first matching record, or None."""
        if self._plain_pk:
            return self._by_pk_run(_operations.fetch_first)  # type: ignore[no-any-return]
        return _execute.run(
            self.connection_name, False, self._fetch(_operations.fetch_first), self._first_stmt(), self._loader
        )

    async def afirst(self) -> M | None:
        """The first matching record, or None (async)."""
        if self._plain_pk:
            return await self._aby_pk_run(_operations.fetch_first)  # type: ignore[no-any-return]
        return await _execute.arun(
            self.connection_name, False, self._fetch(_operations.fetch_first), self._first_stmt(), self._loader
        )

    def _first_stmt(self) -> Select[Any]:
        return self.statement.limit(1)

    def one(self) -> M:
        """The one matching record; `RecordNotFound` or `MultipleRecordsFound` otherwise."""
        return self._exactly_one(self._up_to_two())

    async def aone(self) -> M:
        """The one matching record (async); `RecordNotFound` or `MultipleRecordsFound` otherwise."""
        return self._exactly_one(await self._aup_to_two())

    def one_or_none(self) -> M | None:
        """The one matching record or None; `MultipleRecordsFound` when there are several."""
        return self._at_most_one(self._up_to_two())

    async def aone_or_none(self) -> M | None:
        """The one matching record or None (async)."""
        return self._at_most_one(await self._aup_to_two())

    def _by_pk_run(self, op: Any) -> Any:
        model = self._model
        return _execute.run(
            self.connection_name, False, self._fetch(op), model._ar_by_pk, self._loader, {"_ar_pk": self._pk}
        )

    async def _aby_pk_run(self, op: Any) -> Any:
        model = self._model
        return await _execute.arun(
            self.connection_name, False, self._fetch(op), model._ar_by_pk, self._loader, {"_ar_pk": self._pk}
        )

    def _up_to_two(self) -> list[M]:
        if self._plain_pk:
            # A primary key matches at most one row: no need to ask for a second.
            found = self._by_pk_run(_operations.fetch_first)
            return [] if found is None else [found]
        return _execute.run(
            self.connection_name, False, self._fetch(_operations.fetch_up_to_two), self.statement, self._loader
        )

    async def _aup_to_two(self) -> list[M]:
        if self._plain_pk:
            found = await self._aby_pk_run(_operations.fetch_first)
            return [] if found is None else [found]
        return await _execute.arun(
            self.connection_name, False, self._fetch(_operations.fetch_up_to_two), self.statement, self._loader
        )

    def _at_most_one(self, found: list[M]) -> M | None:
        if len(found) > 1:
            raise MultipleRecordsFound(f"more than one {self._model.__name__} matches")
        return found[0] if found else None

    def _exactly_one(self, found: list[M]) -> M:
        record = self._at_most_one(found)
        if record is None:
            raise RecordNotFound(f"no {self._model.__name__} matches")
        return record

    def _count_stmt(self) -> Select[Any]:
        if self._ext is not None:
            return _query_ext.count_statement(self)
        if self._limit is None and self._offset is None:
            stmt = select(func.count()).select_from(self._model.__table__)
            return stmt.where(*self._where) if self._where else stmt
        return select(func.count()).select_from(self.statement.order_by(None).subquery())

    def count(self) -> int:
        """How many records match."""
        return int(_execute.run(self.connection_name, False, _operations.scalar, self._count_stmt()))

    async def acount(self) -> int:
        """How many records match (async)."""
        return int(await _execute.arun(self.connection_name, False, _operations.scalar, self._count_stmt()))

    def _exists_stmt(self) -> Select[Any]:
        return select(exists(self.statement.order_by(None)))

    def exists(self) -> bool:
        """Whether any record matches."""
        return bool(_execute.run(self.connection_name, False, _operations.scalar, self._exists_stmt()))

    async def aexists(self) -> bool:
        """Whether any record matches (async)."""
        return bool(await _execute.arun(self.connection_name, False, _operations.scalar, self._exists_stmt()))

    def _bulk_where(self, verb: str) -> tuple[ColumnElement[bool], ...]:
        if self._limit is not None or self._offset is not None or self._order_by:
            raise QueryError(f"{verb} applies to every matching row: remove limit/offset/order_by")
        if self._ext is not None:
            return self._where + _query_ext.bulk_conditions(self, verb)
        return self._where

    def _update_stmt(self, values: Mapping[str, Any]) -> Any:
        checked = self._model._ar_update_values(values)
        return self._model.__table__.update().where(*self._bulk_where("update_all")).values(checked)

    def _update_pk_params(self, values: Mapping[str, Any]) -> dict[str, Any] | None:
        """The parameters of the model's prebuilt UPDATE-by-pk, for a bare pk lookup; else None."""
        if not self._plain_pk:
            return None
        checked: dict[str, Any] = self._model._ar_update_values(values)
        if not checked or any(isinstance(v, ClauseElement) for v in checked.values()):
            return None  # no SET, or SQL expressions as values: the general path handles them
        checked["_ar_pk"] = self._pk
        return checked

    def update_all(self, **values: Any) -> int:
        """Set fields on every matching row in one UPDATE; returns the number of rows matched.

        Values are validated first; no model hooks run and loaded records are not refreshed.
        """
        params = self._update_pk_params(values)
        if params is not None:
            return _execute.run(
                self.connection_name, True, _operations.execute_rowcount, self._model._ar_update_pk, params
            )
        return _execute.run(self.connection_name, True, _operations.execute_rowcount, self._update_stmt(values))

    async def aupdate_all(self, **values: Any) -> int:
        """`update_all` (async)."""
        params = self._update_pk_params(values)
        if params is not None:
            return await _execute.arun(
                self.connection_name, True, _operations.execute_rowcount, self._model._ar_update_pk, params
            )
        return await _execute.arun(self.connection_name, True, _operations.execute_rowcount, self._update_stmt(values))

    def _delete_stmt(self) -> Any:
        if self._model._ar_soft is not None:
            return _query_ext.soft_delete_statement(self, self._bulk_where("delete_all"))
        return self._model.__table__.delete().where(*self._bulk_where("delete_all"))

    def delete_all(self) -> int:
        """Delete every matching row in one DELETE; returns the number of rows deleted."""
        return _execute.run(self.connection_name, True, _operations.execute_rowcount, self._delete_stmt())

    async def adelete_all(self) -> int:
        """`delete_all` (async)."""
        return await _execute.arun(self.connection_name, True, _operations.execute_rowcount, self._delete_stmt())

    def paginate(self, per_page: int, after: str | None = None) -> _pagination.Page[M]:
        """A page of ``per_page`` records by keyset (no OFFSET), in this query's ``order_by``
        (primary key appended as tie-breaker; sort columns must be NOT NULL).

        >>> page = Order.find().order_by("-id").paginate(50)
        >>> page = Order.find().order_by("-id").paginate(50, after=page.next_cursor)
        """
        query, keys = self._page_query(per_page, after)
        return self._page(query.all(), per_page, keys)

    async def apaginate(self, per_page: int, after: str | None = None) -> _pagination.Page[M]:
        """`paginate` (async)."""
        query, keys = self._page_query(per_page, after)
        return self._page(await query.aall(), per_page, keys)

    # -- offset pagination --------------------------------------------------------------------

    def _numbered_args(self, number: int, size: int) -> tuple[Any, ...]:
        _pagination.check_page(number, size)
        if self._offset is not None or self._limit is not None:
            raise QueryError("page() sets the limit itself: remove limit()/offset()")
        query = self._copy()
        ext = self._ext
        if ext is None or not ext.group_by:
            # The primary key as the last sort key: pages of an unordered query, or of one
            # ordered by a column with ties, would otherwise overlap or skip rows.
            pk = self._model.__table__.c[self._model._ar_pk]
            if not any(_sort_column(k) is pk for k in self._order_by):
                query._order_by = (*self._order_by, pk)
        offset = (number - 1) * size
        count_stmt = query._count_stmt()  # before the page's LIMIT/OFFSET: the total
        rows = query._copy()
        rows._limit, rows._offset = size, offset
        return count_stmt, rows._fetch(_operations.fetch_all), rows.statement, rows._loader, offset

    def _numbered(self, found: tuple[int, list[M]], number: int, size: int) -> _pagination.NumberedPage[M]:
        total, records = found
        return _pagination.NumberedPage(records, total, number, size)

    def page(self, number: int, size: int) -> _pagination.NumberedPage[M]:
        """Page ``number`` (from 1) of ``size`` records by LIMIT/OFFSET, with the total count.

        The primary key is appended to the query's ``order_by`` so pages neither overlap nor
        skip rows. A page past the last one has no records. For deep pages of big tables prefer
        `paginate` (keyset), whose cost does not grow with the depth.

        >>> page = Order.find().order_by("-created_at").page(2, size=20)
        >>> page.records, page.total, page.pages, page.has_next, page.has_previous
        """
        args = self._numbered_args(number, size)
        found = _execute.run(self.connection_name, False, _pagination.numbered, *args)
        return self._numbered(found, number, size)

    async def apage(self, number: int, size: int) -> _pagination.NumberedPage[M]:
        """`page` (async)."""
        args = self._numbered_args(number, size)
        found = await _execute.arun(self.connection_name, False, _pagination.numbered, *args)
        return self._numbered(found, number, size)

    # -- streaming ----------------------------------------------------------------------------

    def batches(self, size: int = 1000) -> Iterator[list[M]]:
        """Stream the matching records in lists of ``size``, with a server-side cursor where the
        backend has one, so memory stays flat however many rows match."""
        if size < 1:
            raise QueryError("batch size must be at least 1")
        self._check_streamable()
        load = self._loader
        with _execute.connection(self.connection_name) as conn:
            result = _stream(conn, self.statement, size)
            for part in result.partitions():
                yield [load(row) for row in part]

    async def abatches(self, size: int = 1000) -> AsyncIterator[list[M]]:
        """`batches` (async): ``async for batch in query.abatches(500)``."""
        if size < 1:
            raise QueryError("batch size must be at least 1")
        self._check_streamable()
        load = self._loader
        async with _execute.aconnection(self.connection_name) as aconn:
            result = await aconn.stream(self.statement.execution_options(yield_per=size))
            async for part in result.partitions():
                yield [load(row) for row in part]

    def __iter__(self) -> Iterator[M]:
        for batch in self.batches():
            yield from batch

    async def __aiter__(self) -> AsyncIterator[M]:
        async for batch in self.abatches():
            for record in batch:
                yield record


def _check_count(what: str, n: Any) -> None:
    """Refuse a LIMIT or OFFSET that is no int (True is no count), negative, or past the 64-bit
    range every backend's LIMIT holds (SQLite would raise OverflowError, PostgreSQL a DataError)."""
    if n is not None and (n.__class__ is not int and (not isinstance(n, int) or isinstance(n, bool))):
        raise QueryError(f"{what} must be a non-negative int, not {type(n).__name__} {n!r:.40}")
    if n is not None and not 0 <= n < 2**63:
        raise QueryError(f"{what} must be from 0 to 2**63 - 1, not {n!r:.40}")


def _stream(conn: Connection, stmt: Select[Any], size: int) -> Any:
    return conn.execute(stmt.execution_options(yield_per=size))


def _sort_column(key: Any) -> Any:
    """The column of an ORDER BY key, without its direction."""
    while isinstance(key, UnaryExpression):
        key = key.element
    return key
