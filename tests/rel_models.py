"""Models with relations, on the "orders" connection (tables prefixed ``rel_``)."""

from __future__ import annotations

import decimal

from activerecord import (
    ActiveRecord,
    DecimalField,
    ForeignKeyField,
    IntegerField,
    PrimaryKeyField,
    StringField,
    belongs_to,
    has_many,
    has_one,
)


class Customer(ActiveRecord):
    __tablename__ = "rel_customers"
    __connection__ = "orders"

    id: int = PrimaryKeyField()
    name: str = StringField(max_length=50)
    city: str = StringField(max_length=50, default="")

    purchases = has_many("Purchase")
    profile = has_one("Profile")


class Profile(ActiveRecord):
    __tablename__ = "rel_profiles"
    __connection__ = "orders"

    id: int = PrimaryKeyField()
    customer_id: int = ForeignKeyField(Customer, on_delete="CASCADE", unique=True)
    bio: str = StringField(max_length=200, default="")


class Product(ActiveRecord):
    __tablename__ = "rel_products"
    __connection__ = "orders"

    id: int = PrimaryKeyField()
    name: str = StringField(max_length=50)
    price: decimal.Decimal = DecimalField(precision=10, scale=2, default=decimal.Decimal("0"))


class Purchase(ActiveRecord):
    __tablename__ = "rel_purchases"
    __connection__ = "orders"

    id: int = PrimaryKeyField()
    customer_id: int = ForeignKeyField(Customer, on_delete="CASCADE")
    status: str = StringField(max_length=20, default="new")
    total: decimal.Decimal = DecimalField(precision=12, scale=2, default=decimal.Decimal("0"))

    customer = belongs_to(Customer)
    lines = has_many("Line")
    tags = has_many("Tag", through="PurchaseTag")


class Line(ActiveRecord):
    __tablename__ = "rel_lines"
    __connection__ = "orders"

    id: int = PrimaryKeyField()
    purchase_id: int = ForeignKeyField(Purchase, on_delete="CASCADE")
    product_id: int = ForeignKeyField(Product, on_delete="RESTRICT")
    quantity: int = IntegerField(default=1)

    purchase = belongs_to(Purchase)
    product = belongs_to(Product)


class Tag(ActiveRecord):
    __tablename__ = "rel_tags"
    __connection__ = "orders"

    id: int = PrimaryKeyField()
    name: str = StringField(max_length=30, unique=True)

    purchases = has_many(Purchase, through="PurchaseTag")


class PurchaseTag(ActiveRecord):
    __tablename__ = "rel_purchase_tags"
    __connection__ = "orders"
    __unique_together__ = [("purchase_id", "tag_id")]

    id: int = PrimaryKeyField()
    purchase_id: int = ForeignKeyField(Purchase, on_delete="CASCADE")
    tag_id: int = ForeignKeyField(Tag, on_delete="CASCADE")
