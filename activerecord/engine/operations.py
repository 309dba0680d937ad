"""The I/O of every operation, written once as plain sync code on a `sqlalchemy.Connection`.

Async callers reach these through `AsyncConnection.run_sync`'s greenlet bridge (see `_execute`
and `_greenlets`), so each function here is the whole operation: it may run several statements,
but never awaits.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar
from weakref import WeakKeyDictionary

from sqlalchemy import (
    Connection,
    CursorResult,
    DateTime,
    Executable,
    Insert,
    Row,
    Table,
    TextClause,
    create_engine,
    literal,
    select,
    text,
)

from ..dialects import backend_for
from .driver_inserts import compiled_insert

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

#: The attribute that marks an operation of exactly one statement (see `one_statement`).
_ONE_STATEMENT = "activerecord_one_statement"


def one_statement(op: F) -> F:
    """Mark ``op`` as sending exactly one statement to the database, whatever its arguments.

    Outside a transaction such an operation runs in autocommit: the statement commits by itself,
    one round trip (see ``connections.execute.run``). An operation that may send a second
    statement must not be marked: it would not be atomic.
    """
    setattr(op, _ONE_STATEMENT, True)
    return op


def is_one_statement(op: Callable[..., Any]) -> bool:
    """Whether ``op`` (a function or a bound method) is marked by `one_statement`."""
    return getattr(op, _ONE_STATEMENT, False) is True


@one_statement
def insert_one(
    conn: Connection, table: Table, values: Mapping[str, Any], server_defaults: Sequence[str] = ()
) -> tuple[Any, dict[str, Any]]:
    """Insert one row; return its primary key (as the database assigned it, or as given) and the
    values the server filled in for ``server_defaults`` columns left out of ``values`` (where the
    backend can return them)."""
    fetch = tuple(name for name in server_defaults if name not in values)
    dialect: Any = conn.dialect  # (postfetch_lastrowid is on DefaultDialect, not the protocol)
    if (
        dialect.insert_returning
        and not dialect.postfetch_lastrowid
        and (returning := _returning_insert(table, fetch)) is not None
    ):
        # One explicit RETURNING read of the key and the server's values, where the key is not
        # free from the cursor's lastrowid: SQLAlchemy's inserted_primary_key would rebuild the
        # key from the parameters and the returned row.
        stmt, names = returning
        row = conn.execute(stmt, values).one()
        return row[0], {name: value for name, value in zip(names, row, strict=True) if name in fetch} if fetch else {}
    result = conn.execute(_insert_statement(table, fetch), values)
    key = result.inserted_primary_key
    filled = result.returned_defaults if fetch else None
    defaults = {name: filled._mapping[name] for name in server_defaults if name in filled._mapping} if filled else {}
    return (key[0] if key is not None else None), defaults


# The INSERT ... RETURNING of each table with a one-column primary key, per set of server-filled
# columns: the statement and the names of the returned columns in order (the key first).
_RETURNING: WeakKeyDictionary[Table, dict[tuple[str, ...], tuple[Insert, tuple[str, ...]] | None]] = WeakKeyDictionary()


def _returning_insert(table: Table, fetch: tuple[str, ...]) -> tuple[Insert, tuple[str, ...]] | None:
    by_fetch = _RETURNING.get(table)
    if by_fetch is None:
        by_fetch = _RETURNING[table] = {}
    if fetch not in by_fetch:
        keys = list(table.primary_key.columns)
        if len(keys) != 1:
            by_fetch[fetch] = None  # a composite key: inserted_primary_key assembles it
        else:
            names = (keys[0].key, *(name for name in fetch if name != keys[0].key))
            by_fetch[fetch] = (table.insert().returning(*(table.c[name] for name in names)), names)
    return by_fetch[fetch]


# The INSERT of each table (and set of server-filled columns to return), built once: a
# statement object reused keeps its cache key, which SQLAlchemy otherwise computes per call.
_INSERTS: WeakKeyDictionary[Table, dict[tuple[str, ...], Insert]] = WeakKeyDictionary()


def _insert_statement(table: Table, fetch: tuple[str, ...]) -> Insert:
    by_fetch = _INSERTS.get(table)
    if by_fetch is None:
        by_fetch = _INSERTS[table] = {}
    stmt = by_fetch.get(fetch)
    if stmt is None:
        stmt = table.insert()
        if fetch:
            stmt = stmt.return_defaults(*(table.c[name] for name in fetch))
        by_fetch[fetch] = stmt
    return stmt


class SameKeys(list[dict[str, Any]]):
    """Insert values known to name the same columns in every row (as built by the model's
    bulk path), so that `insert_many` sends them as they are, without grouping them."""

    __slots__ = ()


def insert_many(conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]], pk: str | None) -> list[Any] | None:
    """Insert ``rows`` with one executemany per set of columns (rows that leave a column to the
    server differ from rows that give it); the new primary keys in row order where the backend
    can return them, or None (also when ``pk`` is None: no keys wanted, no RETURNING sent)."""
    returning = pk is not None and conn.dialect.insert_executemany_returning_sort_by_parameter_order
    if rows.__class__ is SameKeys:
        return _insert_batch(conn, table, rows, pk if returning else None)
    # SQLAlchemy compiles an executemany for the first row's keys and ignores the others'.
    groups: dict[tuple[str, ...], list[int]] = {}
    for i, row in enumerate(rows):
        groups.setdefault(tuple(row), []).append(i)
    if len(groups) == 1:
        return _insert_batch(conn, table, rows, pk if returning else None)
    keys: list[Any] = [None] * len(rows)
    for positions in groups.values():
        found = _insert_batch(conn, table, [rows[i] for i in positions], pk if returning else None)
        if found is not None:
            for i, key in zip(positions, found, strict=True):
                keys[i] = key
    return keys if returning else None


def _insert_batch(
    conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]], pk: str | None
) -> list[Any] | None:
    """Rows of the same columns; their new keys in row order when ``pk`` is given."""
    if pk is None:
        compiled = compiled_insert(conn, table, tuple(rows[0]))
        if compiled is None:
            execute_many(conn, _insert_statement(table, ()), rows)
        else:
            sql, driver_rows = compiled
            execute_many(conn, sql, driver_rows(rows))
        return None
    found = backend_for(conn.dialect).new_keys(conn, table, pk, rows)
    if found is None:
        stmt = table.insert().returning(table.c[pk], sort_by_parameter_order=True)
        found = list(conn.execute(stmt, rows).scalars())
    return found


def execute_many(conn: Connection, stmt: Executable | str, rows: Sequence[Any]) -> None:
    """``conn.execute(stmt, rows)`` (``exec_driver_sql`` for SQL text in the driver's form, with
    rows in the driver's form): one executemany, or one per page of rows where the backend has a
    page size (`Backend.rows_per_statement`); the caller's transaction holds them all."""
    execute: Callable[[Any, Any], Any] = conn.exec_driver_sql if isinstance(stmt, str) else conn.execute
    page = backend_for(conn.dialect).rows_per_statement
    if page is None or len(rows) <= page:
        execute(stmt, rows)
        return
    for start in range(0, len(rows), page):
        execute(stmt, rows[start : start + page])


@one_statement
def execute_rowcount(conn: Connection, stmt: Executable, params: Mapping[str, Any] | None = None) -> int:
    """Execute a DML statement; the number of rows it matched."""
    return conn.execute(stmt, params).rowcount


@one_statement
def fetch_all(
    conn: Connection, stmt: Executable, load: Callable[[Sequence[Any]], T], params: Mapping[str, Any] | None = None
) -> list[T]:
    """Every row of ``stmt``, each passed through ``load``."""
    return [load(row) for row in plain_rows(conn.execute(stmt, params))]


def plain_rows(result: CursorResult[Any]) -> Sequence[Sequence[Any]]:
    """Every remaining row of ``result``, converted as SQLAlchemy converts them, but as the
    driver's own rows or plain tuples instead of `Row` objects: for loaders that read rows by
    position (records, dicts), which never look at what a `Row` adds.

    A `Row` costs ~0.2 µs to build, a fifth of what async Core spends per row it hands over.
    Where no column of the result has a result processor (what the driver returns is the
    value), the driver's rows are the rows; otherwise SQLAlchemy's own loader path for the ORM
    (``_raw_all_tuples``: processors applied in compiled code, no `Row`) makes them. SQL echo
    of rows (``echo="debug"``) needs the `Row` objects, and gets them.

    Both lean on SQLAlchemy internals: on first use `fast_rows_usable` checks them on a real
    result, and when they do not behave as expected, every call is ``result.all()`` instead.
    """
    if not fast_rows_usable():
        return result.all()
    return _fast_rows(result)


def _fast_rows(result: CursorResult[Any]) -> Sequence[Sequence[Any]]:
    metadata = result._metadata
    if metadata._effective_processors is None and metadata._tuplefilter is None and result._row_logging_fn is None:
        # One fetchall in one call (and the result closed), as Result.all() does it.
        return result._fetchall_impl()  # type: ignore[no-any-return]
    raw_tuples = getattr(result, "_raw_all_tuples", None)
    return raw_tuples() if raw_tuples is not None else result.all()


def _fast_rows_problem() -> str | None:
    """What `_fast_rows` does differently from ``Result.all()`` on this SQLAlchemy, or None."""
    # The stdlib's in-memory SQLite: always there, no I/O. One query whose values pass through
    # as the driver returns them and one with a result processor (DateTime reads ISO text).
    engine = create_engine("sqlite://")
    try:
        with engine.connect() as conn:
            for stmt in (
                select(literal(1).label("a"), literal("x").label("b")),
                select(literal(datetime(2001, 2, 3, 4, 5, 6), DateTime).label("c"), literal(2).label("d")),
            ):
                expected = [tuple(row) for row in conn.execute(stmt).all()]
                got = [tuple(row) for row in _fast_rows(conn.execute(stmt))]
                if got != expected:
                    return f"rows {got!r} instead of {expected!r}"
    except Exception as exc:  # anything at all: the public path is the way out
        return f"{type(exc).__name__}: {exc}"
    finally:
        engine.dispose()
    return None


@functools.cache
def fast_rows_usable() -> bool:
    """Whether `plain_rows`' reading of SQLAlchemy's result internals passed its self-check
    (run once, warning when it did not)."""
    problem = _fast_rows_problem()
    if problem is None:
        return True
    warnings.warn(
        f"activerecord: reading rows through SQLAlchemy's result internals failed its check ({problem}); "
        "using Result.all(), which is correct but slower. Check the pinned SQLAlchemy version.",
        RuntimeWarning,
        stacklevel=2,
    )
    return False


@one_statement
def fetch_first(
    conn: Connection, stmt: Executable, load: Callable[[Sequence[Any]], T], params: Mapping[str, Any] | None = None
) -> T | None:
    """The first row of ``stmt`` through ``load``, or None."""
    row = conn.execute(stmt, params).first()
    return None if row is None else load(row)


@one_statement
def fetch_up_to_two(
    conn: Connection, stmt: Executable, load: Callable[[Sequence[Any]], T], params: Mapping[str, Any] | None = None
) -> list[T]:
    """At most two rows: enough to tell "one" from "several" without reading them all."""
    result = conn.execute(stmt, params)
    rows = result.fetchmany(2)
    result.close()
    return [load(row) for row in rows]


@one_statement
def fetch_row(conn: Connection, stmt: Executable, params: Mapping[str, Any] | None = None) -> Row[Any] | None:
    """The first row of ``stmt`` as a Core `Row`, or None."""
    return conn.execute(stmt, params).first()


@one_statement
def scalar(conn: Connection, stmt: Executable) -> Any:
    """The single value of ``stmt``."""
    return conn.execute(stmt).scalar()


@dataclass
class RawResult:
    """What `execute_raw` returns: the rows (as dicts) of a query, or the row count of a command.

    >>> ActiveRecord.execute_raw("SELECT 1 AS one").scalar()
    1
    """

    rows: list[dict[str, Any]] = field(default_factory=list)
    rowcount: int = -1
    columns: list[str] = field(default_factory=list)

    def scalar(self) -> Any:
        """The first column of the first row, or None when there is no row."""
        return next(iter(self.rows[0].values())) if self.rows else None

    def first(self) -> dict[str, Any] | None:
        """The first row, or None."""
        return self.rows[0] if self.rows else None

    def __iter__(self) -> Any:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)


def execute_raw(conn: Connection, sql: str | TextClause, params: Any) -> RawResult:
    """Run SQL text with bound parameters (a mapping, or a list of mappings for executemany)."""
    stmt = text(sql) if isinstance(sql, str) else sql
    result = conn.execute(stmt, params)
    if result.returns_rows:
        columns = list(result.keys())
        rows = [dict(row) for row in result.mappings()]
        return RawResult(rows=rows, rowcount=len(rows), columns=columns)
    return RawResult(rowcount=result.rowcount)
