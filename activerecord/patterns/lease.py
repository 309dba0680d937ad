"""How a relay leases pending outbox rows: with row locks that concurrent relays skip where the
backend has them, else with one UPDATE under the backend's write lock."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import ColumnElement, Connection, Row, Table, select, update

from ..dialects import backend_for


def lease(
    conn: Connection, table: Table, eligible: ColumnElement[bool], token: str, until: dt.datetime, limit: int
) -> Sequence[Row[tuple[object, ...]]]:
    """Lease up to ``limit`` rows matching ``eligible`` (oldest first) to ``token`` until ``until``;
    return the leased rows in id order. Runs inside the caller's transaction."""
    ids = select(table.c.id).where(eligible).order_by(table.c.id).limit(limit)
    lease_values = {"lease_owner": token, "leased_until": until}
    backend = backend_for(conn.dialect)
    if not backend.locks_rows:
        # One UPDATE: SQLite holds its write lock for the whole statement, so two relays' leases
        # serialise and the second sees the first's lease; reading first and then writing would
        # fail when another writer committed in between (the read snapshot cannot be upgraded).
        conn.execute(update(table).where(table.c.id.in_(ids)).values(lease_values))
    else:
        # Row locks: a concurrent relay skips the rows this one is leasing instead of waiting for
        # them (plain FOR UPDATE, which waits, on servers without SKIP LOCKED).
        chosen = conn.execute(ids.with_for_update(skip_locked=backend.skips_locked_rows(conn.dialect))).scalars().all()
        if not chosen:
            return []
        conn.execute(update(table).where(table.c.id.in_(chosen)).values(lease_values))
    return conn.execute(select(table).where(table.c.lease_owner == token).order_by(table.c.id)).all()
