"""The relay's backend-specific SQL: how a relay leases pending outbox rows.

This belongs behind the dialect seam (activerecord/dialects/) and is kept in this one module so
that it can move there whole; nothing else in activerecord.patterns asks which backend it is on.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import ColumnElement, Connection, Row, Table, select, update


def _skip_locked(conn: Connection) -> bool:
    """FOR UPDATE SKIP LOCKED exists on PostgreSQL 9.5+, MariaDB 10.6+ and MySQL 8.0.1+."""
    dialect = conn.dialect
    if dialect.name == "postgresql":
        return True
    version = dialect.server_version_info or ()
    if getattr(dialect, "is_mariadb", False):
        return tuple(version[:2]) >= (10, 6)
    return tuple(version[:3]) >= (8, 0, 1)


def lease(
    conn: Connection, table: Table, eligible: ColumnElement[bool], token: str, until: dt.datetime, limit: int
) -> Sequence[Row[tuple[object, ...]]]:
    """Lease up to ``limit`` rows matching ``eligible`` (oldest first) to ``token`` until ``until``;
    return the leased rows in id order. Runs inside the caller's transaction."""
    ids = select(table.c.id).where(eligible).order_by(table.c.id).limit(limit)
    lease_values = {"lease_owner": token, "leased_until": until}
    if conn.dialect.name == "sqlite":
        # One UPDATE: SQLite holds its write lock for the whole statement, so two relays' leases
        # serialise and the second sees the first's lease; reading first and then writing would
        # fail when another writer committed in between (the read snapshot cannot be upgraded).
        conn.execute(update(table).where(table.c.id.in_(ids)).values(lease_values))
    else:
        # Row locks: a concurrent relay skips the rows this one is leasing instead of waiting for
        # them (plain FOR UPDATE, which waits, on servers without SKIP LOCKED).
        chosen = conn.execute(ids.with_for_update(skip_locked=_skip_locked(conn))).scalars().all()
        if not chosen:
            return []
        conn.execute(update(table).where(table.c.id.in_(chosen)).values(lease_values))
    return conn.execute(select(table).where(table.c.lease_owner == token).order_by(table.c.id)).all()
