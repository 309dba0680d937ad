"""Aggregates, column selection, subqueries, row locks and upsert, in both modes on every
backend (pagination: test_pagination.py)."""

from __future__ import annotations

import datetime as dt
import decimal

import pytest
import sqlalchemy as sa
from sqlalchemy import func

from activerecord import ActiveRecord, ConnectionManager, IntegerField, PrimaryKeyField, StringField, TimestampField
from activerecord.errors import QueryError, UnknownFieldError, ValidationError

from .dual import IO
from .rel_models import Customer, Line, Product, Purchase


class Stock(ActiveRecord):
    __tablename__ = "qs_stock"
    __connection__ = "orders"

    id: int = PrimaryKeyField()
    sku: str = StringField(max_length=20, unique=True)
    qty: int = IntegerField(default=0)
    note: str = StringField(max_length=50, default="")
    created_at: dt.datetime = TimestampField(auto_now_add=True)
    updated_at: dt.datetime = TimestampField(auto_now=True)


async def purchases(db: IO) -> tuple[Customer, Customer]:
    ada = await db(Customer).create(name="ada", city="london")
    bob = await db(Customer).create(name="bob", city="paris")
    pen = await db(Product).create(name="pen")
    rows = [(ada, "paid", "10.00"), (ada, "paid", "30.00"), (ada, "new", "5.00"), (bob, "paid", "20.00")]
    for owner, status, total in rows:
        p = await db(Purchase).create(customer_id=owner.id, status=status, total=decimal.Decimal(total))
        await db(Line).create(purchase_id=p.id, product_id=pen.id, quantity=2)
    return ada, bob


async def test_aggregates(db: IO) -> None:
    await purchases(db)
    paid = Purchase.find().where(status="paid")
    assert await db(paid).sum(Purchase.total) == decimal.Decimal("60.00")
    assert await db(paid).min("total") == decimal.Decimal("10.00")
    assert await db(paid).max(Purchase.total) == decimal.Decimal("30.00")
    assert decimal.Decimal(str(await db(paid).avg(Purchase.total))) == decimal.Decimal("20")
    assert await db(Purchase.find()).count_distinct(Purchase.customer_id) == 2
    assert await db(Purchase.find()).count_distinct("status") == 2
    assert await db(Purchase.find().where(Purchase.id == -1)).sum(Purchase.total) is None
    # Aggregates respect limit (over a subquery) and joins.
    assert await db(Purchase.find().order_by("total").limit(2)).sum(Purchase.total) == decimal.Decimal("15.00")
    by_ada = Purchase.find().joins("customer").where(Customer.name == "ada")
    assert await db(by_ada).sum(Purchase.total) == decimal.Decimal("45.00")
    with pytest.raises(QueryError, match="no field 'nope'"):
        Purchase.find().sum("nope")


async def test_group_by_having_and_values(db: IO) -> None:
    ada, bob = await purchases(db)
    rows = await db(Purchase.find().group_by(Purchase.customer_id).order_by(Purchase.customer_id)).values(
        Purchase.customer_id, n=func.count(), spent=func.sum(Purchase.total)
    )
    assert rows == [
        {"customer_id": ada.id, "n": 3, "spent": decimal.Decimal("45.00")},
        {"customer_id": bob.id, "n": 1, "spent": decimal.Decimal("20.00")},
    ]
    busy = Purchase.find().group_by("customer_id").having(func.count() > 1)
    assert await db(busy).pluck(Purchase.customer_id) == [ada.id]
    assert await db(busy).count() == 1  # counts groups
    statuses = await db(Purchase.find().group_by(Purchase.status).order_by(Purchase.status)).values(
        "status", n=func.count()
    )
    assert statuses == [{"status": "new", "n": 1}, {"status": "paid", "n": 3}]
    everything = await db(Customer.find().order_by("id")).values()
    assert everything[0] == {"id": ada.id, "name": "ada", "city": "london"}


async def test_distinct_and_pluck(db: IO) -> None:
    await purchases(db)
    assert await db(Purchase.find().order_by("id")).pluck("status") == ["paid", "paid", "new", "paid"]
    assert sorted(await db(Purchase.find().distinct()).pluck(Purchase.status)) == ["new", "paid"]
    pairs = await db(Customer.find().order_by("name")).pluck(Customer.name, Customer.city)
    assert pairs == [("ada", "london"), ("bob", "paris")]
    buyers = Customer.find().joins("purchases").where(Purchase.status == "paid").distinct()
    assert await db(buyers).count() == 2
    assert len(await db(buyers).all()) == 2


async def test_subqueries(db: IO) -> None:
    await purchases(db)
    big_spenders = Purchase.find().where(Purchase.total >= 20).select(Purchase.customer_id)
    found = await db(Customer.find().where(Customer.id.in_(big_spenders)).order_by("name")).all()
    assert [c.name for c in found] == ["ada", "bob"]
    unpaid = Purchase.find().where(status="new").select(Purchase.customer_id)
    assert [c.name for c in await db(Customer.find().where(Customer.id.not_in(unpaid))).all()] == ["bob"]
    has_lines = sa.exists(Line.find().where(Line.purchase_id == Purchase.id).select(Line.id))
    assert await db(Purchase.find().where(has_lines)).count() == 4


async def test_for_update_renders_per_backend_and_runs_in_a_transaction(db: IO) -> None:
    await purchases(db)
    backend = ConnectionManager.backend("orders")
    sql = Purchase.find().for_update(skip_locked=True).to_sql()
    if backend == "sqlite":
        assert "FOR UPDATE" not in sql
    else:
        assert "FOR UPDATE SKIP LOCKED" in sql
    assert "NOWAIT" in Purchase.find().for_update(nowait=True).to_sql() or backend == "sqlite"
    async with db.transaction(Purchase):
        locked = await db(Purchase.find().where(status="paid").for_update()).all()
        assert len(locked) == 3
        for p in locked:
            await db(p).update(status="shipped")
    assert await db(Purchase.find().where(status="shipped")).count() == 3
    async with db.transaction(Line):
        lines = await db(Line.find().includes("product", strategy="join").for_update()).all()
        assert {line.product.name for line in lines} == {"pen"}
    with pytest.raises(QueryError, match="not both"):
        Purchase.find().for_update(nowait=True, skip_locked=True)


@pytest.mark.backends("postgresql", "mysql")
async def test_skip_locked_and_nowait_against_a_held_lock(db: IO) -> None:
    await purchases(db)
    first = await db(Purchase.find().order_by("id")).first()
    assert first is not None
    holder = ConnectionManager.engine("orders").connect()
    try:
        holder.begin()
        holder.execute(Purchase.find().where(Purchase.id == first.id).for_update().statement).all()
        async with db.transaction(Purchase):
            free = await db(Purchase.find().order_by("id").for_update(skip_locked=True)).all()
            assert first.id not in [p.id for p in free] and len(free) == 3
        with pytest.raises(sa.exc.DBAPIError):
            async with db.transaction(Purchase):
                await db(Purchase.find().where(Purchase.id == first.id).for_update(nowait=True)).all()
    finally:
        holder.rollback()
        holder.close()


async def test_upsert_inserts_and_updates_by_key(db: IO) -> None:
    await db(Stock).upsert([{"sku": "a", "qty": 1, "note": "first"}, {"sku": "b", "qty": 2}], conflict=["sku"])
    a = await db(Stock.find().where(sku="a")).one()
    await db(Stock).upsert(
        [{"sku": "a", "qty": 10, "note": "second"}, {"sku": "c", "qty": 3}], conflict=["sku"], update=["qty"]
    )
    rows = {s.sku: s for s in await db(Stock.find()).all()}
    assert {k: (s.qty, s.note) for k, s in rows.items()} == {"a": (10, "first"), "b": (2, ""), "c": (3, "")}
    assert rows["a"].id == a.id and rows["a"].created_at == a.created_at
    # By default every given field except the key and creation stamps is updated.
    await db(Stock).upsert([{"sku": "b", "qty": 20, "note": "all"}], conflict=["sku"])
    b = await db(Stock.find().where(sku="b")).one()
    assert (b.qty, b.note) == (20, "all")
    # update=[] keeps existing rows as they are.
    await db(Stock).upsert([{"sku": "b", "qty": 99}, {"sku": "d", "qty": 4}], conflict=["sku"], update=[])
    assert await db(Stock.find().order_by("sku")).pluck("sku", "qty") == [("a", 10), ("b", 20), ("c", 3), ("d", 4)]


async def test_upsert_validates_before_any_sql(db: IO) -> None:
    with pytest.raises(ValidationError, match=r"rows\[1\].qty"):
        await db(Stock).upsert([{"sku": "ok", "qty": 1}, {"sku": "bad", "qty": "many"}], conflict=["sku"])
    with pytest.raises(UnknownFieldError):
        await db(Stock).upsert([{"sku": "ok"}], conflict=["skew"])
    with pytest.raises(QueryError, match="conflict"):
        await db(Stock).upsert([{"sku": "ok"}], conflict=[])
    assert await db(Stock.find()).count() == 0
    await db(Stock).upsert([], conflict=["sku"])
