"""The relay: leases committed outbox rows, hands them to a publisher, marks them sent.

Delivery is at-least-once: a message is marked sent only after the broker acknowledged it, so a
relay that dies in between publishes it again after its lease expires. Messages with the same
key go out in id order, and a key's next message waits while an earlier one is pending
(retrying, or leased by another relay). A message that fails ``max_attempts`` times is
dead-lettered (status ``dead``) and no longer holds its key back.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, Row, Table, and_, or_, select, update

from ..connections import execute as _execute
from ..engine.greenlets import bridged, run_in_greenlet, wait
from ..errors import ConfigurationError
from . import _tables
from ._loop import LoopThread
from .lease import lease
from .messages import AsyncPublisher, Message, Publisher
from .outbox import Outbox, OutboxCounts

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RelayStats:
    """The outbox's counts and lag, and what this relay did since it started."""

    outbox: OutboxCounts
    published: int
    failed: int
    dead_lettered: int

    @property
    def lag(self) -> float:
        """Seconds the oldest pending message has waited."""
        return self.outbox.lag


@dataclass(frozen=True)
class _Failure:
    id: int
    attempts: int
    error: str


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _ready(table: Table, now: dt.datetime) -> ColumnElement[bool]:
    """Pending rows whose backoff has passed and on which no relay holds a live lease."""
    return and_(
        table.c.status == _tables.PENDING,
        table.c.available_at <= now,
        or_(table.c.leased_until.is_(None), table.c.leased_until < now),
    )


def _lease(
    conn: Connection, table: Table, now: dt.datetime, token: str, until: dt.datetime, limit: int
) -> list[Row[Any]]:
    rows = list(lease(conn, table, _ready(table, now), token, until, limit))
    keys = {row.key for row in rows if row.key is not None}
    if not keys:
        return rows
    # A leased row may have an earlier pending row of its key that this lease did not get (in
    # backoff, leased elsewhere, skipped as locked): it must wait for that one.
    mine = {row.id for row in rows}
    newest = max(row.id for row in rows if row.key is not None)
    earlier = conn.execute(
        select(table.c.id, table.c.key)
        .where(table.c.status == _tables.PENDING, table.c.key.in_(keys), table.c.id < newest)
        .order_by(table.c.id)
    ).all()
    gap: dict[str, int] = {}
    for row_id, key in earlier:
        if row_id not in mine:
            gap.setdefault(key, row_id)
    held = {row.id for row in rows if row.key in gap and row.id > gap[row.key]}
    if not held:
        return rows
    conn.execute(update(table).where(table.c.id.in_(held)).values(lease_owner=None, leased_until=None))
    return [row for row in rows if row.id not in held]


def _settle(
    conn: Connection,
    table: Table,
    token: str,
    sent: Sequence[int],
    failed: Sequence[_Failure],
    skipped: Sequence[int],
    now: dt.datetime,
    policy: tuple[int, float, float],
) -> int:
    """Mark sent rows, reschedule (or dead-letter) failed ones, release skipped ones; return the dead count."""
    max_attempts, backoff, max_backoff = policy
    mine = table.c.lease_owner == token
    free = {"lease_owner": None, "leased_until": None}
    if sent:
        conn.execute(update(table).where(table.c.id.in_(sent), mine).values(status=_tables.SENT, sent_at=now, **free))
    dead = 0
    for failure in failed:
        attempts = failure.attempts + 1
        status = _tables.DEAD if attempts >= max_attempts else _tables.PENDING
        dead += status == _tables.DEAD
        delay = min(backoff * 2 ** (attempts - 1), max_backoff)
        conn.execute(
            update(table)
            .where(table.c.id == failure.id, mine)
            .values(
                status=status,
                attempts=attempts,
                last_error=failure.error[:2000],
                available_at=now + dt.timedelta(seconds=delay),
                **free,
            )
        )
    if skipped:
        conn.execute(update(table).where(table.c.id.in_(skipped), mine).values(**free))
    return dead


def _message(row: Row[Any]) -> Message:
    return Message(
        id=row.message_id,
        topic=row.topic,
        payload=row.payload,
        key=row.key,
        headers=dict(row.headers or {}),
        created_at=row.created_at,
        attempts=row.attempts,
    )


class _Batch:
    """The outcome of publishing one leased batch, in order; a failed key's later rows are skipped."""

    def __init__(self) -> None:
        self.sent: list[int] = []
        self.failed: list[_Failure] = []
        self.skipped: list[int] = []
        self._failed_keys: set[str] = set()

    def blocked(self, row: Row[Any]) -> bool:
        if row.key is not None and row.key in self._failed_keys:
            self.skipped.append(row.id)
            return True
        return False

    def fail(self, row: Row[Any], exc: BaseException) -> None:
        log.warning(
            "outbox message %s (topic %s) not published: %s: %s", row.message_id, row.topic, type(exc).__name__, exc
        )
        self.failed.append(_Failure(row.id, row.attempts, f"{type(exc).__name__}: {exc}"))
        if row.key is not None:
            self._failed_keys.add(row.key)


class Relay:
    """Moves committed outbox messages to a broker through ``publisher``.

    ``publisher`` is a `Publisher` or an `AsyncPublisher`. The sync methods (`run_once`,
    `run_forever`) call a sync publisher one message after the other, and drive an async-only
    publisher on an event loop of the relay's own thread; the async methods run a sync-only
    publisher in worker threads. An async publisher gets up to ``max_in_flight`` messages of
    different keys at once. Use one form per relay. The relay owns the publisher: `close` /
    `aclose` close it.

    ``lease`` seconds must cover publishing one batch: a lease that runs out lets another relay
    publish the same rows again (still at-least-once, but duplicated).
    """

    def __init__(
        self,
        publisher: Publisher | AsyncPublisher,
        *,
        outbox: Outbox | None = None,
        connection: str = "default",
        batch_size: int = 100,
        lease: float = 30.0,
        max_attempts: int = 10,
        backoff: float = 1.0,
        max_backoff: float = 300.0,
        poll_interval: float = 0.5,
        publish_timeout: float = 30.0,
        max_in_flight: int = 16,
    ) -> None:
        if not isinstance(publisher, Publisher | AsyncPublisher):
            raise ConfigurationError(f"{publisher!r} has neither publish() nor apublish()")
        if min(batch_size, max_attempts, max_in_flight) < 1 or lease <= 0 or backoff < 0 or poll_interval <= 0:
            raise ConfigurationError(
                "Relay: batch_size, max_attempts and max_in_flight must be at least 1; "
                "lease and poll_interval above 0; backoff >= 0"
            )
        self.publisher = publisher
        self.outbox = outbox if outbox is not None else Outbox(connection)
        self.batch_size = batch_size
        self.lease = lease
        self.poll_interval = poll_interval
        self.publish_timeout = publish_timeout
        self.max_in_flight = max_in_flight
        self._policy = (max_attempts, backoff, max_backoff)
        self._loop: LoopThread | None = None
        self._counts = {"published": 0, "failed": 0, "dead": 0}
        self._counts_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Relay({self.publisher!r}, outbox={self.outbox!r})"

    # -- one round -------------------------------------------------------------------------

    def _begin(self) -> tuple[str, dt.datetime, dt.datetime]:
        now = _utcnow()
        return uuid.uuid4().hex, now, now + dt.timedelta(seconds=self.lease)

    def _count(self, batch: _Batch, dead: int) -> None:
        with self._counts_lock:
            self._counts["published"] += len(batch.sent)
            self._counts["failed"] += len(batch.failed)
            self._counts["dead"] += dead

    def _publish_in_order(self, rows: Sequence[Row[Any]], batch: _Batch) -> None:
        """A sync publisher: one message after the other."""
        assert isinstance(self.publisher, Publisher)
        for row in rows:
            if batch.blocked(row):
                continue
            try:
                self.publisher.publish(_message(row))
            except Exception as exc:  # any publisher failure is retried later
                batch.fail(row, exc)
            else:
                batch.sent.append(row.id)

    async def _publish_concurrently(self, rows: Sequence[Row[Any]], batch: _Batch) -> None:
        """Up to ``max_in_flight`` publishes wait for their acks at once; one key's messages
        still go one after the other, each after the previous one's ack."""
        slots = asyncio.Semaphore(self.max_in_flight)
        groups: dict[object, list[Row[Any]]] = {}
        for row in rows:
            groups.setdefault(row.key if row.key is not None else (row.id,), []).append(row)

        async def publish(message: Message) -> None:
            if isinstance(self.publisher, AsyncPublisher):
                # asyncio.timeout, not wait_for: on Python 3.11 wait_for drops a cancellation of the
                # relay that arrives as the publish completes.
                async with asyncio.timeout(self.publish_timeout):
                    await self.publisher.apublish(message)
            else:
                await asyncio.to_thread(self.publisher.publish, message)

        async def send(group: list[Row[Any]]) -> None:
            for row in group:
                if batch.blocked(row):
                    continue
                async with slots:
                    try:
                        await publish(_message(row))
                    except Exception as exc:  # any publisher failure is retried later
                        batch.fail(row, exc)
                    else:
                        batch.sent.append(row.id)

        await asyncio.gather(*(send(group) for group in groups.values()))

    def _round(self) -> tuple[int, int]:
        token, now, until = self._begin()
        name, table = self.outbox.connection, self.outbox.table
        rows = _execute.run(name, True, _lease, table, now, token, until, self.batch_size)
        if not rows:
            return 0, 0
        batch = _Batch()
        if bridged():  # an async caller: its own loop awaits the publishes
            wait(self._publish_concurrently(rows, batch))
        elif isinstance(self.publisher, Publisher):
            self._publish_in_order(rows, batch)
        else:
            if self._loop is None:
                self._loop = LoopThread("activerecord-outbox-relay")
            self._loop.call(self._publish_concurrently(rows, batch))
        dead = _execute.run(
            name, True, _settle, table, token, batch.sent, batch.failed, batch.skipped, _utcnow(), self._policy
        )
        self._count(batch, dead)
        return len(rows), len(batch.sent)

    def run_once(self) -> int:
        """Lease one batch, publish it, mark it; return how many messages were published."""
        return self._round()[1]

    async def arun_once(self) -> int:
        """`run_once` (async)."""
        return await run_in_greenlet(self.run_once)

    # -- loops -----------------------------------------------------------------------------

    def run_forever(self, stop: threading.Event) -> None:
        """Run rounds until ``stop`` is set: back to back while batches come full, else every
        ``poll_interval`` seconds. A failing round (database down) is logged and retried."""
        self._forever(stop.is_set, lambda: stop.wait(self.poll_interval))

    async def arun_forever(self, stop: asyncio.Event) -> None:
        """`run_forever` (async)."""

        async def pause() -> None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.poll_interval)

        await run_in_greenlet(self._forever, stop.is_set, lambda: wait(pause()))

    def _forever(self, stopped: Callable[[], bool], pause: Callable[[], object]) -> None:
        while not stopped():
            try:
                leased, _ = self._round()
            except Exception:
                log.exception("outbox relay round failed; retrying in %.1fs", self.poll_interval)
                leased = 0
            if leased < self.batch_size:
                pause()

    # -- observing and closing -------------------------------------------------------------

    def _stats(self, counts: OutboxCounts) -> RelayStats:
        with self._counts_lock:
            return RelayStats(
                outbox=counts,
                published=self._counts["published"],
                failed=self._counts["failed"],
                dead_lettered=self._counts["dead"],
            )

    def stats(self) -> RelayStats:
        """The outbox's counts and lag, and this relay's own counters."""
        return self._stats(self.outbox.stats())

    async def astats(self) -> RelayStats:
        """`stats` (async)."""
        return self._stats(await self.outbox.astats())

    def close(self) -> None:
        """Close the publisher (on the relay's loop thread when it is async) and stop that thread."""
        try:
            if isinstance(self.publisher, Publisher):
                self.publisher.close()
            elif self._loop is not None:
                self._loop.call(self.publisher.aclose(), self.publish_timeout)
        finally:
            if self._loop is not None:
                self._loop.close()
                self._loop = None

    async def aclose(self) -> None:
        """Close the publisher (async)."""
        if isinstance(self.publisher, AsyncPublisher):
            await self.publisher.aclose()
        else:
            await asyncio.to_thread(self.publisher.close)

    def __enter__(self) -> Relay:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> Relay:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
