"""Multi-row INSERTs compiled once per dialect, their rows handed over in the driver's own form.

`Connection.execute(insert, rows)` compiles from its cache, then turns every row into the
driver's parameters: a full `construct_params` per row (the row's values looked up bind by bind,
with its checks), and on a positional paramstyle a tuple built from that. For an executemany of
a few short columns that is most of the time SQLAlchemy spends: measured on 10,000 rows of two
short strings, 1.3 of Core's 2.5 µs a row on SQLite, a fifth of the time on PostgreSQL and
MariaDB. Here the INSERT is compiled once for a dialect, a table and a set of columns, and the
rows go to `Connection.exec_driver_sql` as the driver takes them, with each column's bind
processor applied as SQLAlchemy would apply it. The statement still runs through the
`Connection`: its events (``before_cursor_execute``, the dialect's ``do_executemany``), error
wrapping, invalidation of a broken connection and the transaction are the same; only a
``before_execute`` listener sees the SQL text instead of the `Insert`.

Where SQLAlchemy does more than bind the rows (a column default computed in Python, an
INSERT it would batch into multi-row VALUES itself, a schema translate map, a statement with
post-compile parameters), `compiled_insert` gives None and the caller executes the `Insert`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from operator import itemgetter
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import Connection, Table
from sqlalchemy.engine import Dialect

#: Turns the rows of one column set into the driver's parameters (tuples or dicts).
DriverRows = Callable[[Sequence[Mapping[str, Any]]], Sequence[Any]]

_Key = tuple[Table, tuple[str, ...]]
_CACHE: WeakKeyDictionary[Dialect, dict[_Key, tuple[str, DriverRows] | None]] = WeakKeyDictionary()
_LOCK = threading.Lock()


def compiled_insert(conn: Connection, table: Table, columns: tuple[str, ...]) -> tuple[str, DriverRows] | None:
    """The SQL of ``INSERT INTO table (columns)`` for ``conn``'s dialect and the function that
    makes the driver's parameters of rows naming exactly ``columns``; None where the `Insert`
    must be executed as such (see the module's docstring)."""
    if conn.get_execution_options().get("schema_translate_map"):
        return None
    dialect = conn.dialect
    by_key = _CACHE.get(dialect)
    if by_key is None:
        with _LOCK:
            by_key = _CACHE.setdefault(dialect, {})
    key = (table, columns)
    try:
        return by_key[key]
    except KeyError:
        found = by_key[key] = _compile(dialect, table, columns)
        return found


def _compile(dialect: Dialect, table: Table, columns: tuple[str, ...]) -> tuple[str, DriverRows] | None:
    if getattr(dialect, "use_insertmanyvalues_wo_returning", False):
        return None  # (SQLAlchemy sends such rows as multi-row VALUES itself, faster than this)
    compiled: Any = table.insert().compile(dialect=dialect, column_keys=list(columns), for_executemany=True)
    names = list(compiled.positiontup) if dialect.positional else list(compiled.binds)
    if (
        sorted(names) != sorted(columns)  # a bind of the compiler's own: a default, a sequence
        or compiled.insert_prefetch
        or compiled.post_compile_params
        or compiled.literal_execute_params
    ):
        return None
    processors: dict[str, Any] = {}
    for name in names:
        bind_type = compiled.binds[name].type
        processor = bind_type.dialect_impl(dialect).bind_processor(dialect)
        if processor is not None:
            processors[name] = processor
    escaped: Mapping[str, str] = compiled.escaped_bind_names or {}
    return compiled.string, _row_maker(names, processors, escaped, positional=dialect.positional)


def _row_maker(
    names: list[str], processors: dict[str, Any], escaped: Mapping[str, str], *, positional: bool
) -> DriverRows:
    """``rows -> parameters``: a tuple per row in ``names`` order, or a dict under the names the
    SQL uses; each value through its column's processor, where it has one."""
    if not processors:
        if positional and len(names) > 1:
            getter = itemgetter(*names)
            return lambda rows: list(map(getter, rows))  # (tuples made in C)
        if not positional and not escaped:
            return lambda rows: rows  # (dicts of exactly the bound names: the driver's form already)
    scope: dict[str, Any] = {}
    terms = []
    for k, name in enumerate(names):
        value = f"row[{name!r}]"
        if name in processors:
            scope[f"p{k}"] = processors[name]
            value = f"p{k}({value})"
        terms.append(value if positional else f"{escaped.get(name, name)!r}: {value}")
    each = f"({', '.join(terms)},)" if positional else f"{{{', '.join(terms)}}}"
    source = f"def make(rows):\n    return [{each} for row in rows]\n"
    exec(compile(source, "<activerecord driver rows>", "exec"), scope)
    make: DriverRows = scope["make"]
    return make
