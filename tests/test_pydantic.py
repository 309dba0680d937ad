"""Records as JSON and as pydantic types: `to_dict`, ``dict(record)``, ``jsonable_encoder``,
generated pydantic schemas, records validated from input and ids rendered as strings."""

from __future__ import annotations

import asyncio
import datetime as dt
import decimal
import json
import subprocess
import sys
import uuid
from typing import Any

import pydantic
import pytest
from fastapi.encoders import jsonable_encoder

from activerecord import (
    ActiveRecord,
    BigIntegerField,
    ForeignKeyField,
    IntegerField,
    PrimaryKeyField,
    SoftDeleteField,
    StringField,
    TimestampField,
    VersionField,
    belongs_to,
    generate_id,
    has_many,
    validates,
)
from activerecord.errors import ConfigurationError, QueryError, RelationNotLoaded, UnknownFieldError, ValidationError

from .dual import IO
from .models import Author, Everything
from .rel_models import Customer, Line, Product, Purchase


class Ledger(ActiveRecord):
    """Ids from `generate_id()`, past 2**53, shown to clients as strings by default."""

    __tablename__ = "pyd_ledgers"
    __ids_as_strings__ = True

    id: int = PrimaryKeyField(big=True, autoincrement=False, default=generate_id)
    title: str = StringField(max_length=40)
    remote_ref: int | None = BigIntegerField(nullable=True)

    entries = has_many("Entry")


class Entry(ActiveRecord):
    __tablename__ = "pyd_entries"

    id: int = PrimaryKeyField(big=True, autoincrement=False, default=generate_id)
    ledger_id: int = ForeignKeyField(Ledger, on_delete="CASCADE")
    amount: int = IntegerField(default=0)

    ledger = belongs_to(Ledger)


class Signup(ActiveRecord):
    """Field validators, a record validator and an automatic timestamp."""

    __tablename__ = "pyd_signups"

    id: int = PrimaryKeyField()
    email: str = StringField(max_length=60)
    plan: str = StringField(max_length=10, default="free", choices=["free", "pro"])
    seats: int = IntegerField(default=1, validators=[lambda v: None if v > 0 else "must be positive"])
    joined_at: dt.datetime = TimestampField(auto_now_add=True)

    @validates("email")
    def _email_has_at(self, value: str) -> str | None:
        return None if "@" in value else "must contain @"

    @validates()
    def _pro_needs_seats(self) -> str | None:
        return "pro needs 2 seats or more" if self.plan == "pro" and self.seats < 2 else None


def no_internal_state(data: Any) -> bool:
    """True when no key anywhere in ``data`` is activerecord's internal state."""
    if isinstance(data, dict):
        return not any(str(k).startswith("_ar") for k in data) and all(map(no_internal_state, data.values()))
    if isinstance(data, list):
        return all(map(no_internal_state, data))
    return True


def test_importing_activerecord_does_not_import_pydantic() -> None:
    code = "import sys, activerecord; print('pydantic' in sys.modules, 'pydantic_core' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


async def test_json_encoders_see_only_the_fields(db: IO) -> None:
    made = await db(Everything).create(
        price=decimal.Decimal("9.99"),
        day=dt.date(2024, 2, 3),
        moment=dt.datetime(2024, 2, 3, 4, 5, 6, 7000, tzinfo=dt.UTC),
        doc={"a": [1, None]},
    )
    loaded = await db(Everything.find_by_id(made.id)).one()
    names = list(Everything.__fields__)
    for record in (made, loaded):
        fields = record.to_dict()
        assert list(fields) == names
        assert dict(record) == fields
        assert jsonable_encoder(record) == fields
        assert jsonable_encoder([record, record]) == [fields, fields]
        assert json.loads(json.dumps(fields)) == fields
    assert loaded.to_dict()["moment"] == "2024-02-03T04:05:06.007000+00:00"
    assert loaded.to_dict()["price"] == "9.99"


async def test_to_dict_includes_loaded_relations(db: IO) -> None:
    ada = await db(Customer).create(name="ada")
    pen = await db(Product).create(name="pen", price=decimal.Decimal("1.50"))
    purchase = await db(Purchase).create(customer_id=ada.id, status="paid")
    await db(Line).create(purchase_id=purchase.id, product_id=pen.id, quantity=2)
    await db(Line).create(purchase_id=purchase.id, product_id=pen.id, quantity=3)

    found = await db(Purchase.find().includes("customer", "lines", "lines.product")).all()
    data = found[0].to_dict(include=["customer", "lines.product"], exclude=["total"])
    assert data["status"] == "paid" and "total" not in data
    assert data["customer"] == ada.to_dict()
    assert [line["quantity"] for line in data["lines"]] == [2, 3]
    assert data["lines"][0]["product"] == {"id": pen.id, "name": "pen", "price": "1.50"}
    assert no_internal_state(data)
    json.dumps(data)

    bare = await db(Purchase.find_by_id(purchase.id)).one()
    with pytest.raises(RelationNotLoaded, match="includes\\('lines'\\)"):
        bare.to_dict(include=["lines"])  # a loop is running here: no hidden I/O
    with pytest.raises(QueryError, match="has no relation 'nothing'"):
        bare.to_dict(include=["nothing"])
    with pytest.raises(QueryError, match="lists of names"):
        bare.to_dict(include="lines")
    if not db.is_async:
        # Sync code outside an event loop loads the relation, as reading it would.
        data = await asyncio.to_thread(bare.to_dict, include=["lines"])
        assert [line["quantity"] for line in data["lines"]] == [2, 3]


async def test_ids_as_strings_keep_big_ids_exact(db: IO) -> None:
    ledger = await db(Ledger).create(title="main", remote_ref=2**60 + 1)
    entry = await db(Entry).create(ledger_id=ledger.id, amount=5)
    assert ledger.id > 2**53

    # Ledger renders its key and foreign keys as strings by default; Entry only when asked.
    assert ledger.to_dict()["id"] == str(ledger.id)
    assert ledger.to_dict()["remote_ref"] == 2**60 + 1  # not an id: __ids_as_strings__ is True
    assert ledger.to_dict(ids_as_strings=False)["id"] == ledger.id
    assert entry.to_dict()["id"] == entry.id
    assert entry.to_dict(ids_as_strings=True) == {"id": str(entry.id), "ledger_id": str(ledger.id), "amount": 5}
    assert jsonable_encoder(ledger)["id"] == str(ledger.id)

    loaded = await db(Ledger.find().includes("entries")).one()
    nested = loaded.to_dict(include=["entries"])
    assert nested["id"] == str(ledger.id)
    assert nested["entries"] == [entry.to_dict()]  # each model follows its own setting
    assert loaded.to_dict(include=["entries"], ids_as_strings=True)["entries"][0]["ledger_id"] == str(ledger.id)

    # The pydantic output schema agrees, and input takes the id back as a string.
    out = Ledger.pydantic_model()
    assert json.loads(out.model_validate(ledger).model_dump_json()) == ledger.to_dict()
    assert out.model_json_schema(mode="serialization")["properties"]["id"]["type"] == "string"
    inp = Entry.pydantic_model("input", ids_as_strings=True)
    body = inp.model_validate_json(json.dumps({"ledger_id": str(ledger.id), "amount": 7}))
    second = await db(Entry.from_pydantic(body)).save()
    assert second.ledger_id == ledger.id
    assert Entry.pydantic_model(ids_as_strings=True).__name__ == "EntryStringIds"


def test_ids_as_strings_can_name_the_fields() -> None:
    class Remote(ActiveRecord):
        __tablename__ = "pyd_remote"
        __connection__ = "pyd_remote"
        __ids_as_strings__ = ("account_id",)

        account_id: int = BigIntegerField()
        count: int = IntegerField(default=0)

    with Remote.unprotected():
        record = Remote(id=1, account_id=2**62)
    assert record.to_dict() == {"id": 1, "account_id": str(2**62), "count": 0}

    class Wrong(ActiveRecord):
        __tablename__ = "pyd_wrong"
        __connection__ = "pyd_remote"
        __ids_as_strings__ = ("label",)

        label: str = StringField()

    with pytest.raises(ConfigurationError, match="label, which are no integer fields"):
        Wrong(label="x").to_dict()


def test_output_schema_describes_every_field() -> None:
    schema = Author.pydantic_model().model_json_schema(mode="serialization")
    props = schema["properties"]
    assert schema["title"] == "Author"
    assert set(schema["required"]) == set(Author.__fields__)
    assert props["id"] == {"title": "Id", "type": "integer"}
    assert props["name"] == {"title": "Name", "type": "string", "maxLength": 100}
    assert props["email"]["anyOf"] == [{"type": "string", "maxLength": 200}, {"type": "null"}]
    assert props["role"]["enum"] == ["member", "admin"]
    assert props["created_at"] == {"title": "Created At", "type": "string", "format": "date-time"}
    every = Everything.pydantic_model().model_json_schema(mode="serialization")["properties"]
    assert every["price"]["type"] == "string"  # Decimal, exact in JSON
    assert every["token"] == {"title": "Token", "type": "string", "format": "uuid"}
    assert every["day"] == {"title": "Day", "anyOf": [{"type": "string", "format": "date"}, {"type": "null"}]}


def test_input_schema_leaves_automatic_fields_optional() -> None:
    inp = Author.pydantic_model("input")
    schema = inp.model_json_schema()
    assert schema["title"] == "AuthorInput"
    assert schema["required"] == ["name"]
    props = schema["properties"]
    assert props["role"]["default"] == "member" and props["active"]["default"] is True
    for name in ("id", "email", "age", "created_at", "updated_at"):
        assert props[name]["default"] is None
    with pytest.raises(pydantic.ValidationError) as caught:
        inp.model_validate({"name": "x" * 101, "role": "boss", "created_at": "2024-01-01T00:00:00", "extra": 1})
    assert {e["loc"][0]: e["type"] for e in caught.value.errors()} == {
        "name": "string_too_long",
        "role": "literal_error",
        "created_at": "timezone_aware",
        "extra": "extra_forbidden",
    }
    assert "id" not in Author.pydantic_model("input", exclude=["id"]).model_fields

    update = Author.pydantic_model("update").model_json_schema()
    assert "required" not in update
    assert set(update["properties"]) == {"name", "email", "age", "active", "role"}

    class Note(ActiveRecord):
        __tablename__ = "pyd_notes"
        __connection__ = "pyd_notes"

        text: str = StringField()
        version: int = VersionField()
        deleted_at: dt.datetime | None = SoftDeleteField()

    # The lock version and the soft-delete mark are the model's to keep.
    assert set(Note.pydantic_model("update").model_fields) == {"text"}
    assert Note.pydantic_model("input").model_json_schema()["required"] == ["text"]


def test_schema_arguments_are_checked() -> None:
    with pytest.raises(ConfigurationError, match="kind is one of"):
        Author.pydantic_model("patch")  # type: ignore[arg-type]
    with pytest.raises(UnknownFieldError):
        Author.pydantic_model(exclude=["nope"])
    with pytest.raises(ConfigurationError, match="output schema only"):
        Purchase.pydantic_model("input", include=["lines"])
    with pytest.raises(ConfigurationError, match="abstract"):
        ActiveRecord.pydantic_model()
    assert Author.pydantic_model() is Author.pydantic_model()


def test_field_and_record_validators_run_on_input() -> None:
    inp = Signup.pydantic_model("input")
    with pytest.raises(pydantic.ValidationError, match="must be positive"):
        inp.model_validate({"email": "a@b.c", "seats": 0})
    record = Signup.from_pydantic(inp.model_validate({"email": "a@b.c", "plan": "pro", "seats": 3}))
    assert (record.email, record.plan, record.seats, record.is_persisted) == ("a@b.c", "pro", 3, False)
    with pytest.raises(ValidationError) as caught:
        Signup.from_pydantic(inp.model_validate({"email": "nobody", "plan": "pro"}))
    assert caught.value.errors == {"email": ["must contain @"], "__all__": ["pro needs 2 seats or more"]}

    # As a pydantic type, a model validates input into a record and reports the record's checks.
    adapter = pydantic.TypeAdapter(Signup)
    assert adapter.validate_python({"email": "a@b.c"}).seats == 1
    with pytest.raises(pydantic.ValidationError) as bad:
        adapter.validate_json('{"email": "nobody"}')
    error = bad.value.errors()[0]
    assert error["type"] == "record_invalid" and error["ctx"]["errors"] == {"email": ["must contain @"]}


def test_null_for_an_automatic_field_means_its_default() -> None:
    inp = Author.pydantic_model("input")
    record = Author.from_pydantic(inp.model_validate({"name": "ada", "id": None, "created_at": None, "age": None}))
    assert (record.id, record.created_at, record.age, record.role) == (None, None, None, "member")
    assert Author.from_pydantic({"name": "bob"}).active is True
    with pytest.raises(ConfigurationError, match="takes a pydantic model or a mapping"):
        Author.from_pydantic(["name"])  # type: ignore[arg-type]


async def test_a_model_is_a_pydantic_type(db: IO) -> None:
    adapter = pydantic.TypeAdapter(list[Everything])
    made = await db(Everything).create(
        price=decimal.Decimal("2.50"), moment=dt.datetime(2024, 5, 6, 7, 8, 9, tzinfo=dt.UTC), doc=[1, "a"]
    )
    loaded = await db(Everything.find_by_id(made.id)).one()
    assert adapter.validate_python([loaded])[0] is loaded
    # The JSON of a record through pydantic is `to_dict()`'s, for every kind of field.
    assert json.loads(adapter.dump_json([loaded])) == [loaded.to_dict()]
    assert adapter.dump_python([loaded], mode="json") == [loaded.to_dict()]

    fresh = adapter.validate_json(json.dumps([{"label": "x", "token": str(uuid.UUID(int=5)), "price": "3.25"}]))[0]
    assert isinstance(fresh, Everything) and not fresh.is_persisted
    assert fresh.token == uuid.UUID(int=5) and fresh.price == decimal.Decimal("3.25")
    saved = await db(fresh).save()
    assert (await db(Everything.find_by_id(saved.id)).one()).label == "x"


async def test_output_schema_with_relations_reads_records(db: IO) -> None:
    ada = await db(Customer).create(name="ada")
    pen = await db(Product).create(name="pen")
    purchase = await db(Purchase).create(customer_id=ada.id)
    await db(Line).create(purchase_id=purchase.id, product_id=pen.id, quantity=4)
    out = Purchase.pydantic_model(include=["customer", "lines.product"])
    assert out.__name__ == "PurchaseWithCustomerAndLinesProduct"

    loaded = await db(Purchase.find().includes("customer", "lines.product")).one()
    dumped = out.model_validate(loaded).model_dump(mode="json")
    assert dumped == loaded.to_dict(include=["customer", "lines.product"])

    bare = await db(Purchase.find_by_id(purchase.id)).one()
    with pytest.raises(RelationNotLoaded):
        out.model_validate(bare)
