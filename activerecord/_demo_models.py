"""The demo's two services: "users" (connection ``users``) and "orders" (connection ``orders``).

Their migrations live in the project's top-level ``migrations/users`` and ``migrations/orders``.
"""

from __future__ import annotations

import datetime as dt
import decimal
from typing import Any

from ._fields import DecimalField, IntegerField, JSONField, PrimaryKeyField, StringField, TimestampField
from ._model import ActiveRecord


class User(ActiveRecord):
    """A user of the users service."""

    __tablename__ = "users"
    __connection__ = "users"

    id: int = PrimaryKeyField()
    name: str = StringField(max_length=100)
    email: str = StringField(max_length=200, unique=True)


class Order(ActiveRecord):
    """An order of the orders service; ``user_id`` refers to a user of the other service by value."""

    __tablename__ = "orders"
    __connection__ = "orders"

    id: int = PrimaryKeyField()
    user_id: int = IntegerField(index=True)
    status: str = StringField(max_length=20, default="pending")
    total: decimal.Decimal = DecimalField(precision=12, scale=2)
    created_at: dt.datetime = TimestampField(auto_now_add=True)


class OrderItem(ActiveRecord):
    """One line of an order."""

    __tablename__ = "order_items"
    __connection__ = "orders"

    id: int = PrimaryKeyField()
    order_id: int = IntegerField()
    product_id: int = IntegerField()
    quantity: int = IntegerField()


class Event(ActiveRecord):
    """An event of the orders service's event store."""

    __tablename__ = "events"
    __connection__ = "orders"

    id: int = PrimaryKeyField()
    aggregate_id: str = StringField()
    event_type: str = StringField()
    event_data: Any = JSONField()
    created_at: dt.datetime = TimestampField(auto_now_add=True)
