"""Relations, eager loading and the query surface type-check the way users rely on (mypy --strict)."""

from __future__ import annotations

from collections.abc import Callable

GOOD = """
from activerecord import (
    ActiveRecord, BelongsTo, Collection, Field, ForeignKeyField, HasMany, Page, PrimaryKeyField, Query, StringField,
    VersionField, belongs_to, has_many,
)


class Customer(ActiveRecord):
    id: Field[int] = PrimaryKeyField()
    name: Field[str] = StringField()
    orders: HasMany["Order"] = has_many("Order")


class Order(ActiveRecord):
    id: Field[int] = PrimaryKeyField()
    customer_id: Field[int] = ForeignKeyField(Customer)
    version: Field[int] = VersionField()
    customer = belongs_to(Customer)
    buyer: BelongsTo[Customer] = belongs_to(Customer, foreign_key="customer_id")


def sync_code(ada: Customer) -> str:
    order = Order(buyer=ada)
    who: Customer | None = order.customer
    orders: Collection[Order] = ada.orders
    first: Order = ada.orders[0]
    made: Order = ada.orders.create()
    query: Query[Order] = Order.find().includes("customer").joins("customer").where(Customer.name == "a")
    page: Page[Order] = query.paginate(10, after=None)
    rows: list[dict[str, object]] = query.values()
    names: list[object] = query.pluck("id")
    loaded: Order = order.load("customer")
    Order.upsert([{"customer_id": 1}], conflict=["id"])
    return str((who, orders, first, made, page, rows, names, loaded))


async def async_code() -> str:
    order = await Order.find().aone()
    loaded: Order = await order.aload("customer")
    page: Page[Order] = await Order.find().apaginate(3)
    total: object = await Order.find().asum(Order.id)
    n: int = await Order.find().acount_distinct(Order.customer_id)
    return str((loaded, page, total, n))
"""

BAD = """
from activerecord import ActiveRecord, Field, PrimaryKeyField, StringField, belongs_to


class Customer(ActiveRecord):
    id: Field[int] = PrimaryKeyField()
    name: Field[str] = StringField()


class Order(ActiveRecord):
    id: Field[int] = PrimaryKeyField()
    customer = belongs_to(Customer)


n: int = Order().customer
s: str = Order.find().includes("customer").one()
"""


def test_relations_and_query_features_type_check(mypy_check: Callable[[str], tuple[str, int]]) -> None:
    out, status = mypy_check(GOOD)
    assert status == 0, out


def test_type_errors_are_caught(mypy_check: Callable[[str], tuple[str, int]]) -> None:
    out, status = mypy_check(BAD)
    assert status == 1
    assert 'Incompatible types in assignment (expression has type "Customer | None", variable has type "int")' in out
    assert 'expression has type "Order", variable has type "str"' in out
