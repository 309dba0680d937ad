"""Upsert (insert, or update on a key conflict): each backend compiles its own (`Backend.upsert`).

PostgreSQL and SQLite: ``INSERT ... ON CONFLICT (cols) DO UPDATE``; MySQL/MariaDB:
``INSERT ... ON DUPLICATE KEY UPDATE`` (which reacts to any unique key: ``conflict`` names the
key the caller expects, checked but not sent).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Table

from ..dialects import backend_for
from ..engine import operations as _operations


def upsert(
    conn: Connection,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    conflict: Sequence[str],
    update: Sequence[str],
    pk: str,
) -> None:
    """Run the upsert of ``rows`` (one executemany, or one per page: `_operations.execute_many`)."""
    statement = backend_for(conn.dialect).upsert(table, conflict, update, pk)
    _operations.execute_many(conn, statement, list(rows))
