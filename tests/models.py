"""Models shared by the tests, on the connections the ``db`` fixture configures."""

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


class User(ActiveRecord):
    """The user service's model (connection "users")."""

    __tablename__ = "users"
    __connection__ = "users"

    id: int = PrimaryKeyField()
    name: str = StringField(max_length=100)
    email: str = StringField(max_length=200)


class Order(ActiveRecord):
    """The order service's model (connection "orders")."""

    __tablename__ = "orders"
    __connection__ = "orders"

    id: int = PrimaryKeyField()
    user_id: int = IntegerField(index=True)
    status: str = StringField(max_length=20, default="pending")
    total: decimal.Decimal = DecimalField(precision=12, scale=2, default=decimal.Decimal("0"))
    created_at: dt.datetime = TimestampField(auto_now_add=True)


class OrderItem(ActiveRecord):
    __tablename__ = "order_items"
    __connection__ = "orders"

    id: int = PrimaryKeyField()
    order_id: int = IntegerField(index=True)
    product_id: int = IntegerField()
    quantity: int = IntegerField()
