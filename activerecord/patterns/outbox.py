"""The transactional outbox: ``publish`` writes a message row in the caller's transaction.

The row commits with the caller's other writes or not at all; a `Relay` later hands committed
rows to a broker. ``publish(topic, payload)`` at module level uses the outbox of the
``default`` connection; `Outbox` names another connection or table.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Table, case, delete, func, select

from ..connections import execute as _execute
from ..errors import ValidationError
from ..model.base import ActiveRecord
from . import _tables
from .messages import Message

DEFAULT_TABLE = "activerecord_outbox"


@dataclass(frozen=True)
class OutboxCounts:
    """What the outbox table holds: ``lag`` is the age in seconds of the oldest pending message
    (0.0 when none is pending), the delay a consumer sees at worst right now."""

    pending: int
    retrying: int
    sent: int
    dead: int
    lag: float


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _check(topic: Any, payload: Any, key: Any, headers: Any) -> dict[str, str]:
    errors: dict[str, list[str]] = {}
    if not isinstance(topic, str) or not topic or len(topic) > 255:
        errors["topic"] = ["a non-empty string of at most 255 characters"]
    if key is not None and (not isinstance(key, str) or len(key) > 255):
        errors["key"] = ["a string of at most 255 characters, or None"]
    try:
        json.dumps(payload, allow_nan=False)
    except (TypeError, ValueError) as exc:
        errors["payload"] = [f"not JSON-serializable: {exc}"]
    checked: dict[str, str] = {}
    if headers is not None:
        if not isinstance(headers, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
        ):
            errors["headers"] = ["a mapping of str to str"]
        else:
            checked = dict(headers)
    if errors:
        raise ValidationError("outbox message", errors)
    return checked


def _stats(conn: Connection, table: Table, now: dt.datetime) -> OutboxCounts:
    rows = conn.execute(
        select(
            table.c.status,
            func.count(),
            func.min(table.c.created_at),
            func.sum(case((table.c.attempts > 0, 1), else_=0)),
        )
        .where(table.c.status.in_((_tables.PENDING, _tables.SENT, _tables.DEAD)))
        .group_by(table.c.status)
    ).all()
    by_status = {row[0]: row for row in rows}
    pending = by_status.get(_tables.PENDING)
    oldest = pending[2] if pending is not None else None
    return OutboxCounts(
        pending=int(pending[1]) if pending is not None else 0,
        retrying=int(pending[3] or 0) if pending is not None else 0,
        sent=int(by_status[_tables.SENT][1]) if _tables.SENT in by_status else 0,
        dead=int(by_status[_tables.DEAD][1]) if _tables.DEAD in by_status else 0,
        lag=max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0,
    )


def _purge(conn: Connection, table: Table, before: dt.datetime) -> int:
    result = conn.execute(delete(table).where(table.c.status == _tables.SENT, table.c.sent_at < before))
    return int(result.rowcount)


class Outbox:
    """The outbox table ``table`` on connection ``connection``.

    ``Outbox().model`` is an ordinary activerecord model in that connection's metadata, so
    ``activerecord db revision --autogenerate`` writes its migration; ``create_table()`` creates
    it directly (tests, scripts).
    """

    def __init__(self, connection: str = "default", *, table: str = DEFAULT_TABLE) -> None:
        self.connection = connection
        self.model: type[ActiveRecord] = _tables.outbox_model(connection, table)

    def __repr__(self) -> str:
        return f"Outbox(connection={self.connection!r}, table={self.model.__tablename__!r})"

    @property
    def table(self) -> Table:
        """The outbox's `sqlalchemy.Table`."""
        return self.model.__table__

    def _row(self, topic: str, payload: Any, key: str | None, headers: Mapping[str, str] | None) -> dict[str, Any]:
        checked = _check(topic, payload, key, headers)
        return {
            "message_id": str(uuid.uuid4()),
            "topic": topic,
            "key": key,
            "payload": payload,
            "headers": checked,
            "available_at": _utcnow(),
        }

    def publish(
        self, topic: str, payload: Any, *, key: str | None = None, headers: Mapping[str, str] | None = None
    ) -> Message:
        """Store a message for ``topic`` in the current transaction on this outbox's connection
        (or in its own transaction outside one); return it. ``payload`` must be JSON-serializable,
        ``headers`` strings; messages with the same ``key`` are delivered in publish order."""
        record = self.model.create(**self._row(topic, payload, key, headers))
        return _message(record)

    async def apublish(
        self, topic: str, payload: Any, *, key: str | None = None, headers: Mapping[str, str] | None = None
    ) -> Message:
        """`publish` (async): use it inside ``atransaction()``."""
        record = await self.model.acreate(**self._row(topic, payload, key, headers))
        return _message(record)

    def create_table(self) -> None:
        """Create the outbox table if it is missing (production schemas use migrations)."""
        self.model.create_all()

    async def acreate_table(self) -> None:
        """`create_table` (async)."""
        await self.model.acreate_all()

    def stats(self) -> OutboxCounts:
        """Counts per state and the lag of the oldest pending message."""
        return _execute.run(self.connection, False, _stats, self.table, _utcnow())

    async def astats(self) -> OutboxCounts:
        """`stats` (async)."""
        return await _execute.arun(self.connection, False, _stats, self.table, _utcnow())

    def purge_sent(self, older_than: dt.timedelta) -> int:
        """Delete messages sent more than ``older_than`` ago; return how many."""
        return _execute.run(self.connection, True, _purge, self.table, _utcnow() - older_than)

    async def apurge_sent(self, older_than: dt.timedelta) -> int:
        """`purge_sent` (async)."""
        return await _execute.arun(self.connection, True, _purge, self.table, _utcnow() - older_than)


def _message(record: Any) -> Message:
    return Message(
        id=record.message_id,
        topic=record.topic,
        payload=record.payload,
        key=record.key,
        headers=dict(record.headers or {}),
        created_at=record.created_at,
        attempts=record.attempts,
    )


_default: dict[str, Outbox] = {}


def _outbox(connection: str) -> Outbox:
    found = _default.get(connection)
    if found is None:
        found = _default[connection] = Outbox(connection)
    return found


def publish(
    topic: str,
    payload: Any,
    *,
    key: str | None = None,
    headers: Mapping[str, str] | None = None,
    connection: str = "default",
) -> Message:
    """`Outbox.publish` on the default outbox table of ``connection``."""
    return _outbox(connection).publish(topic, payload, key=key, headers=headers)


async def apublish(
    topic: str,
    payload: Any,
    *,
    key: str | None = None,
    headers: Mapping[str, str] | None = None,
    connection: str = "default",
) -> Message:
    """`Outbox.apublish` on the default outbox table of ``connection``."""
    return await _outbox(connection).apublish(topic, payload, key=key, headers=headers)
