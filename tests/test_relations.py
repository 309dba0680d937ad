"""Relations and eager loading, in both modes on every backend."""

from __future__ import annotations

import decimal
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import sqlalchemy as sa

from activerecord import (
    ActiveRecord,
    ConnectionManager,
    ForeignKeyField,
    IntegerField,
    StringField,
    belongs_to,
    has_many,
    metadata_for,
)
from activerecord.errors import (
    ConfigurationError,
    MissingPrimaryKeyError,
    QueryError,
    RelationNotLoaded,
)

from .dual import IO
from .rel_models import Customer, Line, Product, Profile, Purchase, PurchaseTag, Tag


@contextmanager
def count_selects(db: IO, name: str = "orders") -> Iterator[list[str]]:
    """The SELECT statements sent to connection ``name`` inside the block."""
    engine = ConnectionManager.async_engine(name).sync_engine if db.is_async else ConnectionManager.engine(name)
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append(statement)

    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)


async def shop(db: IO, purchases: int = 3, prefix: str = "") -> dict[str, Any]:
    """Customers with purchases, lines, products and tags."""
    ada = await db(Customer).create(name="ada", city="london")
    bob = await db(Customer).create(name="bob", city="paris")
    await db(Profile).create(customer_id=ada.id, bio="first")
    pen = await db(Product).create(name="pen", price=decimal.Decimal("1.50"))
    ink = await db(Product).create(name="ink", price=decimal.Decimal("4.00"))
    gift = await db(Tag).create(name=prefix + "gift")
    rush = await db(Tag).create(name=prefix + "rush")
    made = []
    for i in range(purchases):
        owner = ada if i % 2 == 0 else bob
        p = await db(Purchase).create(customer_id=owner.id, total=decimal.Decimal(i))
        await db(Line).create(purchase_id=p.id, product_id=pen.id, quantity=i + 1)
        await db(Line).create(purchase_id=p.id, product_id=ink.id, quantity=1)
        await db(PurchaseTag).create(purchase_id=p.id, tag_id=gift.id)
        if i == 0:
            await db(PurchaseTag).create(purchase_id=p.id, tag_id=rush.id)
        made.append(p)
    return {"ada": ada, "bob": bob, "pen": pen, "ink": ink, "gift": gift, "rush": rush, "purchases": made}


async def test_includes_loads_every_kind_of_relation(db: IO) -> None:
    s = await shop(db)
    query = Purchase.find().includes("customer", "lines", "lines.product", "tags").order_by("id")
    found = await db(query).all()
    assert [p.id for p in found] == [p.id for p in s["purchases"]]
    first = found[0]
    assert first.customer == s["ada"] and first.customer.name == "ada"
    assert [line.quantity for line in first.lines] == [1, 1]
    assert {line.product.name for line in first.lines} == {"pen", "ink"}
    assert sorted(t.name for t in first.tags) == ["gift", "rush"]
    assert [t.name for t in found[1].tags] == ["gift"]
    assert found[1].customer.name == "bob"
    # Records shared by several parents are loaded once.
    assert first.lines[0].product is found[1].lines[0].product

    customers = await db(Customer.find().includes("profile", "purchases").order_by("id")).all()
    assert customers[0].profile is not None and customers[0].profile.bio == "first"
    assert customers[1].profile is None
    assert len(customers[0].purchases) == 2 and len(customers[1].purchases) == 1

    tags = await db(Tag.find().includes("purchases").order_by("name")).all()
    assert [len(t.purchases) for t in tags] == [3, 1]


async def test_includes_is_one_query_per_relation_whatever_the_number_of_parents(db: IO) -> None:
    await shop(db, purchases=3)
    query = Purchase.find().includes("customer", "lines", "lines.product", "tags")
    with count_selects(db) as few:
        small = await db(query).all()
    await shop(db, purchases=40, prefix="more-")
    with count_selects(db) as many:
        large = await db(query).all()
    assert len(small) == 3 and len(large) == 43
    # The purchases, then one query each for customer, lines, lines.product and tags.
    assert len(few) == len(many) == 5
    assert all(len(p.lines) == 2 and p.customer is not None for p in large)


async def test_includes_with_first_one_and_nothing_found(db: IO) -> None:
    s = await shop(db)
    target = s["purchases"][1]
    with count_selects(db) as seen:
        one = await db(Purchase.find_by_id(target.id).includes("lines")).one()
    assert len(seen) == 2 and len(one.lines) == 2
    first = await db(Purchase.find().order_by("-id").includes("customer")).first()
    assert first is not None and first.customer is not None
    assert await db(Purchase.find().where(Purchase.id == -1).includes("lines")).all() == []


async def test_includes_with_using_and_not_with_streaming(db: IO) -> None:
    await shop(db, purchases=2)
    found = await db(Purchase.find().using("orders").includes("lines", "customer")).all()
    assert all(p.lines[0]._ar_using == "orders" for p in found)
    assert all(p.customer._ar_using == "orders" for p in found)
    with pytest.raises(QueryError, match="batches"):
        await db.batches(Purchase.find().includes("lines"), 10)


async def test_join_strategy_loads_to_one_relations_in_the_same_query(db: IO) -> None:
    await shop(db)
    with count_selects(db) as seen:
        lines = await db(Line.find().includes("product", "purchase", strategy="join").order_by("id")).all()
    assert len(seen) == 1
    assert [line.product.name for line in lines[:2]] == ["pen", "ink"]
    assert all(line.purchase.id == line.purchase_id for line in lines)
    customers = await db(Customer.find().includes("profile", strategy="join").order_by("id")).all()
    assert customers[0].profile is not None and customers[1].profile is None
    with pytest.raises(QueryError, match="to-one"):
        Purchase.find().includes("lines", strategy="join")


async def test_async_code_never_loads_lazily_and_sync_code_may(db: IO) -> None:
    s = await shop(db)
    purchase = await db(Purchase.find_by_id(s["purchases"][0].id)).one()
    # An event loop runs here (in both modes): reading an unloaded relation names the fix.
    with pytest.raises(RelationNotLoaded, match=r"includes\('lines'\).*aload\('lines'\)"):
        len(purchase.lines)
    with pytest.raises(RelationNotLoaded, match="customer"):
        _ = purchase.customer
    if db.is_async:
        await purchase.aload("lines", "lines.product", "customer")
    else:
        # Plain sync code (no event loop in its thread) loads on first access.
        assert await db.blocking(lambda: purchase.customer) == s["ada"]
        assert await db.blocking(lambda: len(purchase.lines)) == 2
        await db(purchase).load("lines.product")
    assert purchase.customer == s["ada"]
    assert {line.product.name for line in purchase.lines} == {"pen", "ink"}


async def test_reload_forgets_loaded_relations(db: IO) -> None:
    s = await shop(db, purchases=1)
    purchase = await db(Purchase.find().includes("lines")).one()
    await db(Line).create(purchase_id=purchase.id, product_id=s["pen"].id)
    assert len(purchase.lines) == 2
    await db(purchase).reload()
    await db(purchase).load("lines")
    assert len(purchase.lines) == 3


async def test_preload_for_records_fetched_elsewhere(db: IO) -> None:
    await shop(db)
    purchases = await db(Purchase.find()).all()
    with count_selects(db) as seen:
        await db(Purchase).preload(purchases, "lines", "customer")
    assert len(seen) == 2
    assert all(len(p.lines) == 2 for p in purchases)


async def test_changing_the_key_makes_the_loaded_parent_stale(db: IO) -> None:
    s = await shop(db)
    purchase = await db(Purchase.find_by_id(s["purchases"][0].id).includes("customer")).one()
    assert purchase.customer == s["ada"]
    purchase.customer = s["bob"]
    assert purchase.customer_id == s["bob"].id
    await db(purchase).save()
    assert (await db(Purchase.find_by_id(purchase.id).includes("customer")).one()).customer == s["bob"]
    purchase.customer_id = s["ada"].id
    with pytest.raises(RelationNotLoaded):
        _ = purchase.customer  # the cached bob no longer matches the key


async def test_building_through_relations(db: IO) -> None:
    s = await shop(db, purchases=1)
    purchase = await db(Purchase.find_by_id(s["purchases"][0].id).includes("lines", "tags")).one()
    line = await db(purchase.lines).create(product_id=s["ink"].id, quantity=7)
    assert line.purchase_id == purchase.id and line.is_persisted
    assert line in purchase.lines and len(purchase.lines) == 3
    assert await db(purchase.lines.find()).count() == 3
    assert await db(purchase.lines.find().where(Line.quantity > 5)).count() == 1

    bonus = await db(Tag).create(name="bonus")
    await db(purchase.tags).add(bonus)
    new_tag = await db(purchase.tags).create(name="late")
    assert new_tag.is_persisted and len(purchase.tags) == 4
    names = await db(purchase.tags.find().order_by("name")).all()
    assert [t.name for t in names] == ["bonus", "gift", "late", "rush"]

    other = await db(Purchase).create(customer=s["bob"])
    assert other.customer_id == s["bob"].id
    moved = await db(other.lines).add(line)
    assert moved.purchase_id == other.id
    assert await db(Line.find().where(Line.purchase_id == other.id)).count() == 1
    unsaved = Purchase(customer_id=s["ada"].id)
    with pytest.raises(MissingPrimaryKeyError):
        unsaved.lines.build(product_id=s["pen"].id)
    # Records without keys have nothing related: no query, no error, in either mode.
    assert list(unsaved.lines) == [] and len(unsaved.tags) == 0
    assert Line(product_id=None).product is None


async def test_joins_filter_on_related_columns(db: IO) -> None:
    await shop(db, purchases=4)
    by_ada = Purchase.find().joins("customer").where(Customer.name == "ada")
    assert await db(by_ada).count() == 2
    assert {p.customer_id for p in await db(by_ada).all()} == {(await db(Customer.find().where(name="ada")).one()).id}
    big_pen = Purchase.find().joins("lines.product").where(Product.name == "pen", Line.quantity >= 3).distinct()
    assert len(await db(big_pen).all()) == 2
    tagged = Customer.find().joins("purchases.tags").where(Tag.name == "rush").distinct()
    assert [c.name for c in await db(tagged).all()] == ["ada"]
    no_profile = Customer.find().joins("profile", outer=True).where(Profile.id.is_(None))
    assert [c.name for c in await db(no_profile).all()] == ["bob"]
    with pytest.raises(QueryError, match="no relation 'nope'"):
        Purchase.find().joins("nope")


async def test_on_delete_rules_are_enforced_by_the_database(db: IO) -> None:
    s = await shop(db, purchases=2)
    await db(s["ada"]).delete()
    assert await db(Purchase.find().where(Purchase.customer_id == s["ada"].id)).count() == 0
    assert await db(Profile.find()).count() == 0
    assert await db(Line.find()).count() == 2  # bob's purchase and its lines survive
    with pytest.raises(sa.exc.IntegrityError):
        await db(s["pen"]).delete()  # RESTRICT: lines still use it


def test_foreign_key_field_options() -> None:
    with pytest.raises(ConfigurationError, match="one of CASCADE"):
        ForeignKeyField(Customer, on_delete="EXPLODE")
    with pytest.raises(ConfigurationError, match="nullable"):
        ForeignKeyField(Customer, on_delete="set null")
    column = Line.__table__.c.purchase_id
    (fk,) = column.foreign_keys
    assert fk.ondelete == "CASCADE" and fk.column is Purchase.__table__.c.id


def test_unknown_relation_paths_fail_before_any_sql() -> None:
    with pytest.raises(QueryError, match="Purchase has no relation 'items'"):
        Purchase.find().includes("items")
    with pytest.raises(QueryError, match="Line has no relation 'vendor'"):
        Purchase.find().includes("lines.vendor")


def test_same_named_models_on_other_connections_do_not_interfere() -> None:
    class Visitor(ActiveRecord):  # a "Customer" of another service
        __tablename__ = "rel_visitors"
        __connection__ = "visits"
        spots = has_many("Spot")

    class Customer(ActiveRecord):  # same class name as the orders service's model
        __tablename__ = "rel_other_customers"
        __connection__ = "visits"
        name: str = StringField()

    class Spot(ActiveRecord):
        __tablename__ = "rel_spots"
        __connection__ = "visits"
        visitor_id: int = IntegerField()
        owner_id: int = IntegerField()
        owner = belongs_to("Customer")

    assert Spot.__dict__["owner"].target is Customer
    assert Visitor.__dict__["spots"].resolved


def test_relations_never_cross_connections() -> None:
    with pytest.raises(ConfigurationError, match="never cross connections"):

        class Invoice(ActiveRecord):
            __tablename__ = "rel_invoices"
            __connection__ = "billing_only"
            customer_id: int = IntegerField()
            customer = belongs_to(Customer)

    with pytest.raises(ConfigurationError, match="never cross"):

        class Refund(ActiveRecord):
            __tablename__ = "rel_refunds"
            __connection__ = "billing_only"
            purchase_id: int = ForeignKeyField(Purchase)

    class Ledger(ActiveRecord):
        __tablename__ = "rel_ledgers"
        __connection__ = "ledger_only"
        entries = has_many("LedgerEntry")

    class LedgerEntry(ActiveRecord):  # a model of that name, on another connection
        __tablename__ = "rel_ledger_entries"
        __connection__ = "ledger_elsewhere"
        ledger_id: int = IntegerField()

    # A name may still be declared on this connection later; the first use finds it elsewhere.
    with pytest.raises(ConfigurationError, match="LedgerEntry lives on connection 'ledger_elsewhere'"):
        Ledger.find().includes("entries")
    with pytest.raises(ConfigurationError, match="no model named 'Nowhere'"):

        class Lost(ActiveRecord):
            __tablename__ = "rel_lost"
            __connection__ = "ledger_only"
            things = has_many("Nowhere")

        Lost.find().joins("things")

    assert not metadata_for("billing_only").tables


def test_foreign_key_inference_and_its_errors() -> None:
    rel = Purchase.__dict__["tags"]
    assert (rel.foreign_key, rel.target_key, rel.through) == ("purchase_id", "tag_id", PurchaseTag)
    assert Customer.__dict__["purchases"].foreign_key == "customer_id"

    class Shipment(ActiveRecord):
        __tablename__ = "rel_shipments"
        __connection__ = "relcheck"
        origin_id: int = IntegerField()
        destination_id: int = IntegerField()
        origin = belongs_to("Depot")
        legs = has_many("Depot")

    with pytest.raises(ConfigurationError, match="pass foreign_key="):

        class Depot(ActiveRecord):
            __tablename__ = "rel_depots"
            __connection__ = "relcheck"
            name: str = StringField()


def test_relations_between_sharded_models_follow_the_shard_key() -> None:
    class ShardUser(ActiveRecord):
        __tablename__ = "rel_shard_users"
        __connection__ = "relshards"
        __shard_key__ = "id"
        name: str = StringField()
        posts = has_many("ShardPost")

    class ShardPost(ActiveRecord):  # sharded by its author: lives beside the author
        __tablename__ = "rel_shard_posts"
        __connection__ = "relshards"
        __shard_key__ = "shard_user_id"
        shard_user_id: int = IntegerField()
        author = belongs_to(ShardUser, foreign_key="shard_user_id")

    assert ShardUser.__dict__["posts"].resolved and ShardPost.__dict__["author"].resolved

    with pytest.raises(ConfigurationError, match="would cross shards"):

        class ShardComment(ActiveRecord):  # sharded by its own id: its author may be elsewhere
            __tablename__ = "rel_shard_comments"
            __connection__ = "relshards"
            __shard_key__ = "id"
            shard_user_id: int = IntegerField()
            author = belongs_to(ShardUser, foreign_key="shard_user_id")
