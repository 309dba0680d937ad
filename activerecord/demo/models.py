"""The demo's two services and their models: a user service and an order service.

Each service owns its database (its named connection): ``users`` and ``orders``. The models
are the seed document's, with types declared.
"""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Awaitable, Callable
from typing import Any

from .. import (
    ActiveRecord,
    DecimalField,
    Field,
    IntegerField,
    JSONField,
    PrimaryKeyField,
    StringField,
    TimestampField,
)

Subscriber = Callable[[dict[str, Any]], Awaitable[None]]


class EventBus:
    """The demo's stand-in for a message broker: subscribers by event type, called in order."""

    def __init__(self) -> None:
        self._subscribers: dict[str, list[Subscriber]] = {}

    def subscribe(self, event_type: str, subscriber: Subscriber) -> None:
        """Call ``subscriber`` with each published event of ``event_type`` (``"*"``: every type)."""
        self._subscribers.setdefault(event_type, []).append(subscriber)

    def unsubscribe(self, event_type: str, subscriber: Subscriber) -> None:
        """Stop calling ``subscriber`` for ``event_type``."""
        self._subscribers.get(event_type, []).remove(subscriber)

    async def publish(self, message: dict[str, Any]) -> None:
        """Deliver ``message`` to the subscribers of its type, then to those of every type."""
        for subscriber in self._subscribers.get(message["event_type"], []) + self._subscribers.get("*", []):
            await subscriber(message)


bus = EventBus()


async def publish_event(event: EventStore) -> None:
    """Publish a stored event on the bus, as the seed's ``publish_event`` does to its broker."""
    await bus.publish(event.to_dict())


class User(ActiveRecord):
    """A user of the user service."""

    __tablename__ = "users"
    __connection__ = "users"

    id: Field[int] = PrimaryKeyField()
    name: Field[str] = StringField(max_length=100)
    email: Field[str] = StringField(max_length=200, unique=True)


class Order(ActiveRecord):
    """An order of the order service; ``user_id`` refers to the user service by value only."""

    __tablename__ = "orders"
    __connection__ = "orders"

    id: Field[int] = PrimaryKeyField()
    user_id: Field[int] = IntegerField(index=True)
    status: Field[str] = StringField(max_length=20, default="pending")
    total: Field[decimal.Decimal] = DecimalField(precision=12, scale=2, default=decimal.Decimal("0"))
    created_at: Field[dt.datetime] = TimestampField(auto_now_add=True)


class OrderItem(ActiveRecord):
    """One line of an order."""

    __tablename__ = "order_items"
    __connection__ = "orders"

    id: Field[int] = PrimaryKeyField()
    order_id: Field[int] = IntegerField(index=True)
    product_id: Field[int] = IntegerField()
    quantity: Field[int] = IntegerField()


class EventStore(ActiveRecord):
    """The seed's event store: every change to an aggregate, appended in order."""

    __tablename__ = "events"
    __connection__ = "orders"

    id: Field[int] = PrimaryKeyField()
    aggregate_id: Field[str] = StringField()
    event_type: Field[str] = StringField()
    event_data: Field[Any] = JSONField()
    created_at: Field[dt.datetime] = TimestampField(auto_now_add=True)

    @classmethod
    async def append_event(cls, aggregate_id: str, event_type: str, data: Any) -> EventStore:
        """Append one event, then publish it for other services."""
        event = cls(aggregate_id=aggregate_id, event_type=event_type, event_data=data)
        await event.asave()
        await publish_event(event)
        return event

    @classmethod
    async def get_events_for_aggregate(cls, aggregate_id: str) -> list[EventStore]:
        """The aggregate's events in the order they were appended."""
        return await cls.find().where(cls.aggregate_id == aggregate_id).order_by(cls.created_at, cls.id).aall()
