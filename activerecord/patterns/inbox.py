"""The inbox: a consumer runs its handler and records the message id in one transaction.

A message delivered again (brokers deliver at least once; the outbox relay publishes again after
a crash) finds its id recorded and does nothing: the handler's writes happen once. This holds
for the handler's writes to this inbox's database only; what a handler does elsewhere (calls to
other services, e-mails) is not rolled back with them and may happen twice.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import Connection, Table, insert, select
from sqlalchemy.exc import IntegrityError

from ..connections import execute as _execute
from ..connections import transaction as _transaction
from ..dialects.utc import utcnow
from ..errors import ValidationError
from ..model.base import ActiveRecord
from . import _tables
from .messages import Message

DEFAULT_TABLE = "activerecord_inbox"


class _Duplicate(Exception):
    """Raised inside the transaction to roll it back when the message was already processed."""


def _record(conn: Connection, table: Table, consumer: str, message: Message) -> None:
    conn.execute(
        insert(table).values(consumer=consumer, message_id=message.id, topic=message.topic, processed_at=utcnow())
    )


def _seen(conn: Connection, table: Table, consumer: str, message_id: str) -> bool:
    stmt = select(table.c.id).where(table.c.consumer == consumer, table.c.message_id == message_id)
    return conn.execute(stmt).first() is not None


class Inbox:
    """The inbox table ``table`` on ``connection``, for the consumer named ``consumer``.

    Several consumers may share one table: each processes a message once. ``Inbox().model`` is
    an ordinary activerecord model in the connection's metadata (migrations autogenerate it).
    """

    def __init__(self, connection: str = "default", *, consumer: str, table: str = DEFAULT_TABLE) -> None:
        if not isinstance(consumer, str) or not consumer or len(consumer) > 100:
            raise ValidationError("Inbox", {"consumer": ["a non-empty string of at most 100 characters"]})
        self.connection = connection
        self.consumer = consumer
        self.model: type[ActiveRecord] = _tables.inbox_model(connection, table)

    def __repr__(self) -> str:
        return f"Inbox(connection={self.connection!r}, consumer={self.consumer!r}, table={self.model.__tablename__!r})"

    @property
    def table(self) -> Table:
        """The inbox's `sqlalchemy.Table`."""
        return self.model.__table__

    def _check(self, message: Message) -> None:
        if not isinstance(message, Message) or not message.id or len(message.id) > 255:
            raise ValidationError("inbox message", {"id": ["a Message with a non-empty id of at most 255 characters"]})

    def handle(self, message: Message, handler: Callable[[Message], Any]) -> bool:
        """Run ``handler(message)`` and record the message in one transaction; return False (and
        run nothing) if this consumer already processed it. An exception from the handler rolls
        both back, so the message can be processed again."""
        self._check(message)
        try:
            with _transaction.transaction(self.connection):
                try:
                    _execute.run(self.connection, True, _record, self.table, self.consumer, message)
                except IntegrityError as exc:
                    raise _Duplicate from exc
                handler(message)
        except _Duplicate:
            return False
        return True

    async def ahandle(self, message: Message, handler: Callable[[Message], Awaitable[Any]]) -> bool:
        """`handle` (async): ``handler`` is a coroutine function, run inside ``atransaction()``."""
        self._check(message)
        try:
            async with _transaction.atransaction(self.connection):
                try:
                    await _execute.arun(self.connection, True, _record, self.table, self.consumer, message)
                except IntegrityError as exc:
                    raise _Duplicate from exc
                await handler(message)
        except _Duplicate:
            return False
        return True

    def seen(self, message_id: str) -> bool:
        """Whether this consumer has processed ``message_id``."""
        return _execute.run(self.connection, False, _seen, self.table, self.consumer, message_id)

    async def aseen(self, message_id: str) -> bool:
        """`seen` (async)."""
        return await _execute.arun(self.connection, False, _seen, self.table, self.consumer, message_id)

    def create_table(self) -> None:
        """Create the inbox table if it is missing (production schemas use migrations)."""
        self.model.create_all()

    async def acreate_table(self) -> None:
        """`create_table` (async)."""
        await self.model.acreate_all()
