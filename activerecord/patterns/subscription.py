"""Subscriptions: a handler sees every event of a store once, in position order, from a stored checkpoint.

Each round is one transaction on the store's connection: lock the subscription's checkpoint row,
read the next batch of events after it, run the handler on each, move the checkpoint past the
batch, commit. The handler's own writes to that database commit with the checkpoint or not at
all, so each event's effects there happen exactly once, even when the process dies mid-batch or
two processes run the same subscription (the second waits for the first's lock and starts where
it ended). What a handler does elsewhere (a broker, an e-mail) may happen again after a crash: a
failed batch is rolled back and handled again from its first event.

A subscription first catches up from its checkpoint, then follows new appends: on PostgreSQL
it waits on ``LISTEN`` for the store's notification (sent at each append's commit) and also
polls every ``poll_interval`` seconds in case one is missed; elsewhere it polls.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

from sqlalchemy import Connection, Table, select, update

from ..connections import execute as _execute
from ..connections import transaction as _transaction
from ..connections.manager import ConnectionManager
from ..dialects import backend_for
from ..dialects.base import Backend
from ..dialects.utc import utcnow
from ..errors import ConfigurationError, ValidationError
from .event_store import EventStore
from .events import RecordedEvent

log = logging.getLogger(__name__)

Handler = Callable[[RecordedEvent], Any]
AsyncHandler = Callable[[RecordedEvent], Awaitable[Any]]


def _claim(conn: Connection, checkpoints: Table, name: str) -> int:
    """Lock the checkpoint row (creating it at 0) and return its position."""
    where = checkpoints.c.name == name
    # A no-op UPDATE takes the row lock: a second runner of this subscription waits here.
    if conn.execute(update(checkpoints).where(where).values(position=checkpoints.c.position)).rowcount != 1:
        stmt = backend_for(conn.dialect).upsert(checkpoints, ["name"], [], "name")
        conn.execute(stmt, {"name": name, "position": 0, "updated_at": utcnow()})
        conn.execute(update(checkpoints).where(where).values(position=checkpoints.c.position))
    return int(conn.execute(select(checkpoints.c.position).where(where)).scalar_one())


def _advance(conn: Connection, checkpoints: Table, name: str, position: int) -> None:
    conn.execute(update(checkpoints).where(checkpoints.c.name == name).values(position=position, updated_at=utcnow()))


def _position(conn: Connection, checkpoints: Table, name: str) -> int:
    found = conn.execute(select(checkpoints.c.position).where(checkpoints.c.name == name)).scalar_one_or_none()
    return int(found or 0)


class Subscription:
    """``handler`` run on each event of ``store`` once, in order, checkpointed under ``name``.

    In sync use ``handler`` is a function; in async use (`arun_once`, `arun_forever`) a
    coroutine function (or a function). It runs inside the round's transaction: its model writes
    on the store's connection commit together with the checkpoint. An exception from it rolls the
    batch back and is raised by `run_once` (logged and retried by `run_forever`).
    """

    def __init__(
        self,
        store: EventStore,
        name: str,
        handler: Handler | AsyncHandler,
        *,
        batch_size: int = 100,
        poll_interval: float = 1.0,
    ) -> None:
        if not isinstance(name, str) or not name or len(name) > 100:
            raise ValidationError("Subscription", {"name": ["a non-empty string of at most 100 characters"]})
        if batch_size < 1 or poll_interval <= 0:
            raise ConfigurationError("Subscription: batch_size must be at least 1 and poll_interval above 0")
        self.store = store
        self.name = name
        self.handler = handler
        self.batch_size = batch_size
        self.poll_interval = poll_interval

    def __repr__(self) -> str:
        return f"Subscription({self.store!r}, {self.name!r})"

    @property
    def _table(self) -> Table:
        return self.store.models.checkpoints.__table__

    @property
    def _connection(self) -> str:
        return self.store.connection

    # -- one round -------------------------------------------------------------------------

    def run_once(self) -> int:
        """Handle the next batch of events after the checkpoint; return how many."""
        name = self._connection
        with _transaction.transaction(name):
            start = _execute.run(name, True, _claim, self._table, self.name)
            events = self.store.read_all(from_position=start + 1, limit=self.batch_size)
            for event in events:
                if inspect.isawaitable(result := self.handler(event)):
                    getattr(result, "close", lambda: None)()
                    raise ConfigurationError(f"{self!r}: the handler is async; use arun_once() / arun_forever()")
            if events:
                _execute.run(name, True, _advance, self._table, self.name, events[-1].position)
        return len(events)

    async def arun_once(self) -> int:
        """`run_once` (async)."""
        name = self._connection
        async with _transaction.atransaction(name):
            start = await _execute.arun(name, True, _claim, self._table, self.name)
            events = await self.store.aread_all(from_position=start + 1, limit=self.batch_size)
            for event in events:
                result = self.handler(event)
                if inspect.isawaitable(result):
                    await result
            if events:
                await _execute.arun(name, True, _advance, self._table, self.name, events[-1].position)
        return len(events)

    def position(self) -> int:
        """The position of the last event handled (0 before the first)."""
        return _execute.run(self._connection, False, _position, self._table, self.name)

    async def aposition(self) -> int:
        """`position` (async)."""
        return await _execute.arun(self._connection, False, _position, self._table, self.name)

    # -- following -------------------------------------------------------------------------

    def _backend(self) -> Backend:
        return backend_for(ConnectionManager.backend(self._connection))

    @contextlib.contextmanager
    def _waiter(self, stop: threading.Event) -> Iterator[Callable[[], object]]:
        backend = self._backend()
        if not backend.has_notifications:
            yield lambda: stop.wait(self.poll_interval)
            return
        with ConnectionManager.engine(self._connection).connect() as conn:
            try:
                conn.execution_options(isolation_level="AUTOCOMMIT")
                backend.listen(conn, self.store.channel)
                yield lambda: backend.wait_for_notification(conn, self.poll_interval)
            finally:
                # Never hand a listening connection back to the pool.
                conn.invalidate()

    def run_forever(self, stop: threading.Event) -> None:
        """Catch up, then follow new events until ``stop`` is set (noticed within
        ``poll_interval``). A failing round (handler error, database down) is logged and
        retried after ``poll_interval``."""
        while not stop.is_set():
            try:
                with self._waiter(stop) as wait:
                    while not stop.is_set():
                        # Listening starts before the round, so no append between the two is missed.
                        if self.run_once() < self.batch_size:
                            wait()
            except Exception:
                log.exception("subscription %s failed; retrying in %.1fs", self.name, self.poll_interval)
                stop.wait(self.poll_interval)

    @contextlib.asynccontextmanager
    async def _awaiter(self, stop: asyncio.Event) -> AsyncIterator[Callable[[], Awaitable[None]]]:
        backend = self._backend()

        async def sleep() -> None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.poll_interval)

        if not backend.has_notifications:
            yield sleep
            return
        async with ConnectionManager.async_engine(self._connection).connect() as aconn:
            try:
                await aconn.execution_options(isolation_level="AUTOCOMMIT")
                await aconn.run_sync(backend.listen, self.store.channel)

                async def notified() -> None:
                    await aconn.run_sync(backend.wait_for_notification, self.poll_interval)

                yield notified
            finally:
                await aconn.invalidate()

    async def arun_forever(self, stop: asyncio.Event) -> None:
        """`run_forever` (async)."""
        while not stop.is_set():
            try:
                async with self._awaiter(stop) as wait:
                    while not stop.is_set():
                        if await self.arun_once() < self.batch_size:
                            await wait()
            except Exception:
                log.exception("subscription %s failed; retrying in %.1fs", self.name, self.poll_interval)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.poll_interval)
