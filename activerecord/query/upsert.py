"""Upsert (insert, or update on a key conflict), compiled per backend in this one place.

PostgreSQL and SQLite: ``INSERT ... ON CONFLICT (cols) DO UPDATE``; MySQL/MariaDB:
``INSERT ... ON DUPLICATE KEY UPDATE`` (which reacts to any unique key: ``conflict`` names the
key the caller expects, checked but not sent).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import mysql, postgresql, sqlite

from ..engine import operations as _operations


def statement(dialect: str, table: Table, conflict: Sequence[str], update: Sequence[str], pk: str) -> Any:
    """The upsert statement for ``dialect`` (rows are bound at execution)."""
    if dialect in ("postgresql", "sqlite"):
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        stmt = insert(table)
        keys = [table.c[c] for c in conflict]
        if not update:
            return stmt.on_conflict_do_nothing(index_elements=keys)
        return stmt.on_conflict_do_update(index_elements=keys, set_={c: stmt.excluded[c] for c in update})
    if dialect in ("mysql", "mariadb"):
        my = mysql.insert(table)
        # With nothing to update, re-assigning the key leaves the row as it is.
        changes = {c: my.inserted[c] for c in update} if update else {pk: table.c[pk]}
        return my.on_duplicate_key_update(changes)
    raise NotImplementedError(f"upsert is not implemented for the {dialect} dialect")


def upsert(
    conn: Connection,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    conflict: Sequence[str],
    update: Sequence[str],
    pk: str,
) -> None:
    """Run the upsert of ``rows`` (one executemany, or one per page: `_operations.execute_many`)."""
    _operations.execute_many(conn, statement(conn.dialect.name, table, conflict, update, pk), list(rows))
