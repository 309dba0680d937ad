"""The demo's two services and their models: a user service and an order service.

Each service owns its database (its named connection): ``users`` and ``orders``. The models
are the seed document's, with types declared.
"""

from __future__ import annotations

import datetime as dt
import decimal
from typing import Any

from . import (
    ActiveRecord,
    DecimalField,
    IntegerField,
    JSONField,
    PrimaryKeyField,
    StringField,
    TimestampField,
)


class User(ActiveRecord):
    """A user of the user service."""

    __tablename__ = "users"
    __connection__ = "users"

    id: int = PrimaryKeyField()
    name: str = StringField(max_length=100)
    email: str = StringField(max_length=200, unique=True)


class Order(ActiveRecord):
    """An order of the order service; ``user_id`` refers to the user service by value only."""

    __tablename__ = "orders"
    __connection__ = "orders"

    id: int = PrimaryKeyField()
    user_id: int = IntegerField(index=True)
    status: str = StringField(max_length=20, default="pending")
    total: decimal.Decimal = DecimalField(precision=12, scale=2, default=decimal.Decimal("0"))
    created_at: dt.datetime = TimestampField(auto_now_add=True)


class OrderItem(ActiveRecord):
    """One line of an order."""

    __tablename__ = "order_items"
    __connection__ = "orders"

    id: int = PrimaryKeyField()
    order_id: int = IntegerField(index=True)
    product_id: int = IntegerField()
    quantity: int = IntegerField()


class EventStore(ActiveRecord):
    """The seed's event store: every change to an aggregate, appended in order."""

    __tablename__ = "events"
    __connection__ = "orders"

    id: int = PrimaryKeyField()
    aggregate_id: str = StringField()
    event_type: str = StringField()
    event_data: Any = JSONField()
    created_at: dt.datetime = TimestampField(auto_now_add=True)

    @classmethod
    async def append_event(cls, aggregate_id: str, event_type: str, data: Any) -> EventStore:
        """Append one event; it is published once the surrounding transaction commits."""
        event = cls(aggregate_id=aggregate_id, event_type=event_type, event_data=data)
        await event.asave()
        return event

    @classmethod
    async def get_events_for_aggregate(cls, aggregate_id: str) -> list[EventStore]:
        """The aggregate's events in the order they were appended."""
        return await cls.find().where(cls.aggregate_id == aggregate_id).order_by(cls.created_at, cls.id).aall()
