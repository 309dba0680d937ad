"""Models with relations, on the "orders" connection (tables prefixed ``rel_``)."""

from __future__ import annotations

import decimal

from activerecord import (
    ActiveRecord,
    DecimalField,
    Field,
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

    id: Field[int] = PrimaryKeyField()
    name: Field[str] = StringField(max_length=50)
    city: Field[str] = StringField(max_length=50, default="")

    purchases = has_many("Purchase")
    profile = has_one("Profile")


class Profile(ActiveRecord):
    __tablename__ = "rel_profiles"
    __connection__ = "orders"

    id: Field[int] = PrimaryKeyField()
    customer_id: Field[int] = ForeignKeyField(Customer, on_delete="CASCADE", unique=True)
    bio: Field[str] = StringField(max_length=200, default="")


class Product(ActiveRecord):
    __tablename__ = "rel_products"
    __connection__ = "orders"

    id: Field[int] = PrimaryKeyField()
    name: Field[str] = StringField(max_length=50)
    price: Field[decimal.Decimal] = DecimalField(precision=10, scale=2, default=decimal.Decimal("0"))


class Purchase(ActiveRecord):
    __tablename__ = "rel_purchases"
    __connection__ = "orders"

    id: Field[int] = PrimaryKeyField()
    customer_id: Field[int] = ForeignKeyField(Customer, on_delete="CASCADE")
    status: Field[str] = StringField(max_length=20, default="new")
    total: Field[decimal.Decimal] = DecimalField(precision=12, scale=2, default=decimal.Decimal("0"))

    customer = belongs_to(Customer)
    lines = has_many("Line")
    tags = has_many("Tag", through="PurchaseTag")


class Line(ActiveRecord):
    __tablename__ = "rel_lines"
    __connection__ = "orders"

    id: Field[int] = PrimaryKeyField()
    purchase_id: Field[int] = ForeignKeyField(Purchase, on_delete="CASCADE")
    product_id: Field[int] = ForeignKeyField(Product, on_delete="RESTRICT")
    quantity: Field[int] = IntegerField(default=1)

    purchase = belongs_to(Purchase)
    product = belongs_to(Product)


class Tag(ActiveRecord):
    __tablename__ = "rel_tags"
    __connection__ = "orders"

    id: Field[int] = PrimaryKeyField()
    name: Field[str] = StringField(max_length=30, unique=True)

    purchases = has_many(Purchase, through="PurchaseTag")


class PurchaseTag(ActiveRecord):
    __tablename__ = "rel_purchase_tags"
    __connection__ = "orders"
    __unique_together__ = [("purchase_id", "tag_id")]

    id: Field[int] = PrimaryKeyField()
    purchase_id: Field[int] = ForeignKeyField(Purchase, on_delete="CASCADE")
    tag_id: Field[int] = ForeignKeyField(Tag, on_delete="CASCADE")
