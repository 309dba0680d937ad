"""The event store: streams of events with optimistic concurrency and a global order equal to commit order.

Every append takes two row locks, in this order, until its transaction ends:

1. its stream's row in ``{prefix}streams``, updated with a conditional ``UPDATE ... SET
   version = expected + n WHERE version = expected``: an UPDATE always judges the newest
   committed row (PostgreSQL re-checks the condition after waiting for a concurrent writer;
   InnoDB's UPDATE is a locking read even under REPEATABLE READ), so of several appenders
   expecting the same version exactly one matches and the others find the new version and raise
   `ConcurrencyError`, having written nothing;
2. the ``$all`` row of the same table, the store's position counter, bumped by the number of
   events: the appender holds it until it commits, so the next appender gets its positions only
   after this one's events are visible, and positions are handed out in commit order.

So a reader that has seen position N can never later find a committed event below N: the
trap of autoincrement keys (taken at insert time, committed in any order) cannot happen. The
same statements give this on each backend: PostgreSQL (row lock on the counter, released after
the commit is visible), MariaDB/MySQL (InnoDB row lock, released after the commit), SQLite
(the whole database has one writer: ``BEGIN IMMEDIATE`` serialises appends). The price is that
appends to one store are serialised on the counter, one commit after the other; appends to
different stores (``prefix``) are not.

On PostgreSQL each append also sends ``pg_notify`` (delivered at commit), which wakes live
subscriptions; elsewhere they poll.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Row, Table, insert, select, update

from ..connections import execute as _execute
from ..connections import transaction as _transaction
from ..dialects import backend_for
from ..dialects.utc import utcnow
from ..engine.greenlets import run_in_greenlet
from ..errors import ConcurrencyError, ConfigurationError, ValidationError
from . import _store_tables
from ._store_tables import ALL, StoreModels
from .events import EventRegistry, NewEvent, RecordedEvent, Snapshot
from .outbox import Outbox

DEFAULT_PREFIX = "activerecord_"

#: ``expected_version`` for a stream that must not exist yet (or has no events).
NO_STREAM = 0


def _bad(field: str, message: str) -> ValidationError:
    return ValidationError("event store", {field: [message]})


def check_stream_id(stream_id: Any) -> str:
    """``stream_id`` if it is a valid stream id, else `ValidationError`."""
    if not isinstance(stream_id, str) or not stream_id or len(stream_id) > 255 or stream_id.startswith("$"):
        raise _bad("stream_id", "a non-empty string of at most 255 characters, not starting with '$'")
    return stream_id


@dataclass(frozen=True)
class AppendResult:
    """What an append wrote: the stream's new version and the events' positions (first and last)."""

    stream_id: str
    version: int
    first_position: int
    last_position: int


@dataclass(frozen=True)
class _Plan:
    stream_id: str
    expected: int | None
    rows: list[dict[str, Any]]
    channel: str | None


def _bump(conn: Connection, streams: Table, stream_id: str, count: int, expected: int | None) -> int | None:
    """Add ``count`` to the row's version (if it is ``expected``); the new version, or None if no row matched."""
    where = streams.c.stream_id == stream_id
    if expected is None:
        stmt = update(streams).where(where).values(version=streams.c.version + count)
        if conn.dialect.update_returning:
            found = conn.execute(stmt.returning(streams.c.version)).scalar_one_or_none()
            return None if found is None else int(found)
        if conn.execute(stmt).rowcount != 1:
            return None
        # Read back under the row lock just taken: it sees this transaction's own write.
        return int(conn.execute(select(streams.c.version).where(where)).scalar_one())
    result = conn.execute(update(streams).where(where, streams.c.version == expected).values(version=expected + count))
    return expected + count if result.rowcount == 1 else None


def _ensure(conn: Connection, streams: Table, stream_id: str) -> None:
    """Create the stream's row at version 0 unless it exists (a concurrent creator's row is waited for)."""
    stmt = backend_for(conn.dialect).upsert(streams, ["stream_id"], [], "stream_id")
    conn.execute(stmt, {"stream_id": stream_id, "version": 0})


def _current(conn: Connection, streams: Table, stream_id: str) -> int | None:
    return conn.execute(select(streams.c.version).where(streams.c.stream_id == stream_id)).scalar_one_or_none()


def _append(conn: Connection, models: StoreModels, plan: _Plan) -> AppendResult:
    events, streams = models.events.__table__, models.streams.__table__
    count = len(plan.rows)
    if plan.expected == NO_STREAM:
        # Create the row first: concurrent creators then queue on it. (An UPDATE that finds no
        # row would take a gap lock on InnoDB, and two such before two inserts deadlock.)
        _ensure(conn, streams, plan.stream_id)
    version = _bump(conn, streams, plan.stream_id, count, plan.expected)
    if version is None and plan.expected is None:
        _ensure(conn, streams, plan.stream_id)
        version = _bump(conn, streams, plan.stream_id, count, plan.expected)
    if version is None:
        raise ConcurrencyError(plan.stream_id, plan.expected, _current(conn, streams, plan.stream_id))
    last = _bump(conn, streams, ALL, count, None)
    if last is None:
        _ensure(conn, streams, ALL)
        last = _bump(conn, streams, ALL, count, None)
        assert last is not None
    first, base = last - count + 1, version - count
    rows = [{**row, "position": first + i, "version": base + 1 + i} for i, row in enumerate(plan.rows)]
    conn.execute(insert(events), rows)
    if plan.channel is not None:
        backend_for(conn.dialect).notify(conn, plan.channel)
    return AppendResult(plan.stream_id, version, first, last)


def _read_stream(conn: Connection, events: Table, stream_id: str, start: int, limit: int | None) -> list[Row[Any]]:
    stmt = select(events).where(events.c.stream_id == stream_id, events.c.version >= start).order_by(events.c.version)
    return list(conn.execute(stmt if limit is None else stmt.limit(limit)).all())


def _read_all(conn: Connection, events: Table, start: int, limit: int) -> list[Row[Any]]:
    stmt = select(events).where(events.c.position >= start).order_by(events.c.position).limit(limit)
    return list(conn.execute(stmt).all())


def _stream_version(conn: Connection, streams: Table, stream_id: str) -> int:
    return _current(conn, streams, stream_id) or 0


def _head(conn: Connection, streams: Table) -> int:
    return _current(conn, streams, ALL) or 0


def _save_snapshot(conn: Connection, snapshots: Table, stream_id: str, version: int, state: Any) -> bool:
    now = utcnow()
    where = (snapshots.c.stream_id == stream_id, snapshots.c.version < version)
    if conn.execute(update(snapshots).where(*where).values(version=version, state=state, taken_at=now)).rowcount:
        return True
    stmt = backend_for(conn.dialect).upsert(snapshots, ["stream_id"], [], "stream_id")
    conn.execute(stmt, {"stream_id": stream_id, "version": version, "state": state, "taken_at": now})
    # Either this insert went in, or a snapshot at ``version`` or newer was already there.
    row = conn.execute(select(snapshots.c.version).where(snapshots.c.stream_id == stream_id)).scalar_one()
    return bool(row == version)


def _load_snapshot(conn: Connection, snapshots: Table, stream_id: str) -> Row[Any] | None:
    return conn.execute(select(snapshots).where(snapshots.c.stream_id == stream_id)).first()


class EventStore:
    """The event store whose tables are named ``{prefix}events``, ``{prefix}streams``,
    ``{prefix}snapshots`` and ``{prefix}checkpoints`` on ``connection``.

    ``registry`` upcasts old payloads on read (`EventRegistry`). With ``outbox`` (an `Outbox`
    on the same connection), every appended event is also published there in the append's
    transaction, on topic ``topic_prefix + event.type`` with the stream id as key, so a relay
    delivers it to a broker at least once and in stream order.

    Every method has an async twin (``aappend``, ``aread_stream``, ...). Called inside
    ``transaction()`` on the store's connection, `append` joins that transaction: the events
    commit with the caller's other writes or not at all.
    """

    def __init__(
        self,
        connection: str = "default",
        *,
        prefix: str = DEFAULT_PREFIX,
        registry: EventRegistry | None = None,
        outbox: Outbox | None = None,
        topic_prefix: str = "",
    ) -> None:
        if outbox is not None and outbox.connection != connection:
            raise ConfigurationError(
                f"EventStore: the outbox is on connection {outbox.connection!r}, the store on {connection!r}; "
                "they must share the connection to commit in one transaction"
            )
        self.connection = connection
        self.prefix = prefix
        self.registry = registry if registry is not None else EventRegistry()
        self.outbox = outbox
        self.topic_prefix = topic_prefix
        self.models = _store_tables.store_models(connection, prefix)
        #: The notification channel live subscriptions listen on (PostgreSQL).
        self.channel = f"{prefix}events".lower()

    def __repr__(self) -> str:
        return f"EventStore(connection={self.connection!r}, prefix={self.prefix!r})"

    @property
    def events_table(self) -> Table:
        """The events' `sqlalchemy.Table`."""
        return self.models.events.__table__

    # -- appending -------------------------------------------------------------------------

    def _plan(self, stream_id: str, events: Sequence[NewEvent], expected_version: int | None) -> _Plan:
        check_stream_id(stream_id)
        if isinstance(events, NewEvent) or not isinstance(events, Sequence) or not events:
            raise _bad("events", "a non-empty sequence of NewEvent")
        if expected_version is not None and (
            not isinstance(expected_version, int) or isinstance(expected_version, bool) or expected_version < 0
        ):
            raise _bad("expected_version", "None (any), NO_STREAM (0) or a version of at least 1")
        now = utcnow()
        rows = []
        for event in events:
            if not isinstance(event, NewEvent) or not isinstance(event.type, str) or not event.type:
                raise _bad("events", f"{event!r} is not a NewEvent with a non-empty type")
            if len(event.type) > 255:
                raise _bad("type", "at most 255 characters")
            try:
                json.dumps(event.data, allow_nan=False)
            except (TypeError, ValueError) as exc:
                raise _bad("data", f"not JSON-serializable: {exc}") from None
            metadata = event.metadata
            if not isinstance(metadata, Mapping) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()
            ):
                raise _bad("metadata", "a mapping of str to str")
            rows.append(
                {
                    "event_id": event.id or str(uuid.uuid4()),
                    "stream_id": stream_id,
                    "type": event.type,
                    "schema_version": self.registry.version(event.type),
                    "data": event.data,
                    "meta": dict(metadata),
                    "recorded_at": now,
                }
            )
        return _Plan(stream_id, expected_version, rows, self.channel)

    def _publish_args(self, plan: _Plan, result: AppendResult) -> list[tuple[str, dict[str, Any]]]:
        return [
            (
                self.topic_prefix + row["type"],
                {
                    "id": row["event_id"],
                    "stream_id": plan.stream_id,
                    "version": result.version - len(plan.rows) + 1 + i,
                    "position": result.first_position + i,
                    "type": row["type"],
                    "schema_version": row["schema_version"],
                    "data": row["data"],
                    "metadata": row["meta"],
                },
            )
            for i, row in enumerate(plan.rows)
        ]

    def append(
        self, stream_id: str, events: Sequence[NewEvent], *, expected_version: int | None = None
    ) -> AppendResult:
        """Append ``events`` to ``stream_id`` in one transaction (the caller's, if one is open).

        ``expected_version``: None appends whatever the stream's version; `NO_STREAM` (0)
        requires a new stream; n requires the stream to be at version n. Otherwise
        `ConcurrencyError` is raised and nothing is written.
        """
        plan = self._plan(stream_id, events, expected_version)
        if self.outbox is None:
            return _execute.run(self.connection, True, _append, self.models, plan)
        with _transaction.transaction(self.connection):
            result = _execute.run(self.connection, True, _append, self.models, plan)
            for topic, payload in self._publish_args(plan, result):
                self.outbox.publish(topic, payload, key=stream_id)
        return result

    async def aappend(
        self, stream_id: str, events: Sequence[NewEvent], *, expected_version: int | None = None
    ) -> AppendResult:
        """`append` (async)."""
        return await run_in_greenlet(self.append, stream_id, events, expected_version=expected_version)

    # -- reading ---------------------------------------------------------------------------

    def _event(self, row: Row[Any]) -> RecordedEvent:
        data, version = self.registry.upcast(row.type, row.schema_version, row.data)
        return RecordedEvent(
            position=row.position,
            stream_id=row.stream_id,
            version=row.version,
            type=row.type,
            data=data,
            metadata=dict(row.meta or {}),
            id=row.event_id,
            recorded_at=row.recorded_at,
            schema_version=version,
        )

    @staticmethod
    def _check_start(name: str, value: Any, limit: Any, limit_required: bool) -> None:
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise _bad(name, "an int of at least 0")
        if (limit is not None or limit_required) and (not isinstance(limit, int) or limit < 1):
            raise _bad("limit", "an int of at least 1")

    def read_stream(self, stream_id: str, *, from_version: int = 1, limit: int | None = None) -> list[RecordedEvent]:
        """The events of ``stream_id`` from version ``from_version`` on (at most ``limit``), in order."""
        check_stream_id(stream_id)
        self._check_start("from_version", from_version, limit, False)
        rows = _execute.run(self.connection, False, _read_stream, self.events_table, stream_id, from_version, limit)
        return [self._event(row) for row in rows]

    async def aread_stream(
        self, stream_id: str, *, from_version: int = 1, limit: int | None = None
    ) -> list[RecordedEvent]:
        """`read_stream` (async)."""
        check_stream_id(stream_id)
        self._check_start("from_version", from_version, limit, False)
        rows = await _execute.arun(
            self.connection, False, _read_stream, self.events_table, stream_id, from_version, limit
        )
        return [self._event(row) for row in rows]

    def read_all(self, *, from_position: int = 1, limit: int = 1000) -> list[RecordedEvent]:
        """Up to ``limit`` events of every stream from global position ``from_position`` on, in
        commit order. Positions only grow with commits: a reader that got up to position N and
        asks again from N + 1 misses nothing, however many appends commit meanwhile. (Positions
        have no gaps either, except for events deleted by hand.)"""
        self._check_start("from_position", from_position, limit, True)
        rows = _execute.run(self.connection, False, _read_all, self.events_table, from_position, limit)
        return [self._event(row) for row in rows]

    async def aread_all(self, *, from_position: int = 1, limit: int = 1000) -> list[RecordedEvent]:
        """`read_all` (async)."""
        self._check_start("from_position", from_position, limit, True)
        rows = await _execute.arun(self.connection, False, _read_all, self.events_table, from_position, limit)
        return [self._event(row) for row in rows]

    def stream_version(self, stream_id: str) -> int:
        """The version of ``stream_id`` (0 for a stream with no events)."""
        check_stream_id(stream_id)
        return _execute.run(self.connection, False, _stream_version, self.models.streams.__table__, stream_id)

    async def astream_version(self, stream_id: str) -> int:
        """`stream_version` (async)."""
        check_stream_id(stream_id)
        return await _execute.arun(self.connection, False, _stream_version, self.models.streams.__table__, stream_id)

    def head(self) -> int:
        """The position of the last committed event (0 for an empty store)."""
        return _execute.run(self.connection, False, _head, self.models.streams.__table__)

    async def ahead(self) -> int:
        """`head` (async)."""
        return await _execute.arun(self.connection, False, _head, self.models.streams.__table__)

    # -- snapshots -------------------------------------------------------------------------

    def _check_snapshot(self, stream_id: str, version: Any, state: Any) -> None:
        check_stream_id(stream_id)
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise _bad("version", "the stream version the state was built from, at least 1")
        try:
            json.dumps(state, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise _bad("state", f"not JSON-serializable: {exc}") from None

    def save_snapshot(self, stream_id: str, version: int, state: Any) -> bool:
        """Keep ``state`` (JSON) as the state of ``stream_id`` at ``version``, unless a snapshot
        at that version or a newer one is already kept; whether this one was kept."""
        self._check_snapshot(stream_id, version, state)
        table = self.models.snapshots.__table__
        return _execute.run(self.connection, True, _save_snapshot, table, stream_id, version, state)

    async def asave_snapshot(self, stream_id: str, version: int, state: Any) -> bool:
        """`save_snapshot` (async)."""
        self._check_snapshot(stream_id, version, state)
        table = self.models.snapshots.__table__
        return await _execute.arun(self.connection, True, _save_snapshot, table, stream_id, version, state)

    @staticmethod
    def _snapshot(row: Row[Any] | None) -> Snapshot | None:
        return None if row is None else Snapshot(row.stream_id, row.version, row.state, row.taken_at)

    def load_snapshot(self, stream_id: str) -> Snapshot | None:
        """The newest snapshot of ``stream_id``, or None. Replay the stream from
        ``snapshot.version + 1`` on top of it."""
        check_stream_id(stream_id)
        table = self.models.snapshots.__table__
        return self._snapshot(_execute.run(self.connection, False, _load_snapshot, table, stream_id))

    async def aload_snapshot(self, stream_id: str) -> Snapshot | None:
        """`load_snapshot` (async)."""
        check_stream_id(stream_id)
        table = self.models.snapshots.__table__
        return self._snapshot(await _execute.arun(self.connection, False, _load_snapshot, table, stream_id))

    # -- schema ----------------------------------------------------------------------------

    def create_tables(self) -> None:
        """Create the store's tables if they are missing, with the position counter's row
        (production schemas use migrations; the row is otherwise made by the first append)."""
        self.models.events.create_all(self.connection, models=self.models.all)
        _execute.run(self.connection, True, _ensure, self.models.streams.__table__, ALL)

    async def acreate_tables(self) -> None:
        """`create_tables` (async)."""
        await self.models.events.acreate_all(self.connection, models=self.models.all)
        await _execute.arun(self.connection, True, _ensure, self.models.streams.__table__, ALL)
