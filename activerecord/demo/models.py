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
from ..patterns import Message, Outbox, Relay, SagaOrchestrator

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


class BusPublisher:
    """The relay's publisher for the demo's bus: an outbox message's payload is the event."""

    def __init__(self, target: EventBus) -> None:
        self.target = target

    async def apublish(self, message: Message) -> None:
        """Deliver the event to the bus's subscribers."""
        await self.target.publish(message.payload)

    async def aclose(self) -> None:
        """Nothing to close."""


#: The order service's saga table (see ``app.OrderSaga``), declared with the models so that
#: ``create_all`` and the migrations include it.
SAGA_TABLE = SagaOrchestrator("orders", table="sagas").table

#: The order service's outbox: an event's message commits with the event (see `EventStore`).
outbox = Outbox("orders", table="outbox")
relay = Relay(BusPublisher(bus), outbox=outbox)


async def publish_event(event: EventStore) -> None:
    """Store the event's message in the outbox, in the transaction that stores the event (the
    seed's ``publish_event`` sends it to the broker at once, and loses it if the process dies
    first); the relay delivers it to the bus once that transaction has committed."""
    await outbox.apublish(event.event_type, event.to_dict(), key=event.aggregate_id)


async def _deliver() -> None:
    await deliver_events()


async def deliver_events() -> int:
    """Hand every committed, undelivered event message to the bus; how many were delivered."""
    delivered = 0
    while sent := await relay.arun_once():
        delivered += sent
    return delivered


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
        """Append one event and its outbox message in one transaction (the caller's, if one is
        open); once that commits, deliver it to the other services. A crash in between loses
        nothing: the message is delivered by the next relay run."""
        async with cls.atransaction() as tx:
            event = cls(aggregate_id=aggregate_id, event_type=event_type, event_data=data)
            await event.asave()
            await publish_event(event)
            tx.on_commit(_deliver)
        return event

    @classmethod
    async def get_events_for_aggregate(cls, aggregate_id: str) -> list[EventStore]:
        """The aggregate's events in the order they were appended."""
        return await cls.find().where(cls.aggregate_id == aggregate_id).order_by(cls.created_at, cls.id).aall()
