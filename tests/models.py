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
    Field,
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

    id: Field[int] = PrimaryKeyField()
    name: Field[str] = StringField(max_length=100)
    email: Field[str | None] = StringField(max_length=200, nullable=True, unique=True)
    age: Field[int | None] = IntegerField(nullable=True)
    active: Field[bool] = BooleanField(default=True)
    role: Field[str] = StringField(max_length=20, default="member", choices=["member", "admin"])
    created_at: Field[dt.datetime] = TimestampField(auto_now_add=True)
    updated_at: Field[dt.datetime] = TimestampField(auto_now=True)


class Everything(ActiveRecord):
    """One field of every kind."""

    __tablename__ = "everything"
    __indexes__ = [("small", "big")]
    __unique_together__ = [("label", "day")]

    id: Field[int] = PrimaryKeyField(big=True)
    small: Field[int] = IntegerField(default=0)
    big: Field[int] = BigIntegerField(default=0)
    label: Field[str] = StringField(max_length=10, default="")
    body: Field[str] = TextField(default="")
    flag: Field[bool] = BooleanField(default=False)
    ratio: Field[float] = FloatField(default=0.0)
    price: Field[decimal.Decimal] = DecimalField(precision=10, scale=2, default=decimal.Decimal("0"))
    day: Field[dt.date | None] = DateField(nullable=True)
    moment: Field[dt.datetime | None] = DateTimeField(nullable=True)
    doc: Field[Any] = JSONField(nullable=True)
    token: Field[uuid.UUID] = UUIDField(default=uuid.uuid4)


__all__ = ["Author", "EventStore", "Everything", "Order", "OrderItem", "User"]
