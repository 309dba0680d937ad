"""Models shared by the tests, on the connections the ``db`` fixture configures.

The user and order services' models are the demo's (``activerecord.demo.models``).
"""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
from typing import Any

from activerecord import (
    ActiveRecord,
    BigIntegerField,
    BooleanField,
    DateField,
    DateTimeField,
    DecimalField,
    FloatField,
    IntegerField,
    JSONField,
    PrimaryKeyField,
    StringField,
    TextField,
    TimestampField,
    UUIDField,
)
from activerecord.demo.models import EventStore, Order, OrderItem, User


class Author(ActiveRecord):
    __tablename__ = "authors"

    id: int = PrimaryKeyField()
    name: str = StringField(max_length=100)
    email: str | None = StringField(max_length=200, nullable=True, unique=True)
    age: int | None = IntegerField(nullable=True)
    active: bool = BooleanField(default=True)
    role: str = StringField(max_length=20, default="member", choices=["member", "admin"])
    created_at: dt.datetime = TimestampField(auto_now_add=True)
    updated_at: dt.datetime = TimestampField(auto_now=True)


class Everything(ActiveRecord):
    """One field of every kind."""

    __tablename__ = "everything"
    __indexes__ = [("small", "big")]
    __unique_together__ = [("label", "day")]

    id: int = PrimaryKeyField(big=True)
    small: int = IntegerField(default=0)
    big: int = BigIntegerField(default=0)
    label: str = StringField(max_length=10, default="")
    body: str = TextField(default="")
    flag: bool = BooleanField(default=False)
    ratio: float = FloatField(default=0.0)
    price: decimal.Decimal = DecimalField(precision=10, scale=2, default=decimal.Decimal("0"))
    day: dt.date | None = DateField(nullable=True)
    moment: dt.datetime | None = DateTimeField(nullable=True)
    doc: Any = JSONField(nullable=True)
    token: uuid.UUID = UUIDField(default=uuid.uuid4)


__all__ = ["Author", "EventStore", "Everything", "Order", "OrderItem", "User"]
