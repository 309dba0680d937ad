"""Model declaration, construction and validation: pure, no database."""

from __future__ import annotations

import datetime as dt
import decimal
import uuid

import pytest
import sqlalchemy as sa

from activerecord import (
    ActiveRecord,
    IntegerField,
    PrimaryKeyField,
    StringField,
    metadata_for,
    models_for,
)
from activerecord.errors import ConfigurationError, UnknownFieldError, ValidationError

from .models import Author, Everything, Order, User


def test_a_model_is_a_core_table() -> None:
    table = Author.__table__
    assert isinstance(table, sa.Table)
    assert table.name == "authors"
    assert [c.name for c in table.primary_key] == ["id"]
    assert isinstance(table.c.name.type, sa.String) and table.c.name.type.length == 100
    assert table.c.email.nullable and not table.c.name.nullable
    assert table.c.email.unique


def test_class_attributes_are_column_expressions() -> None:
    assert Author.name is Author.__table__.c.name
    expr = Author.name == "ada"
    assert isinstance(expr, sa.ColumnElement)
    assert str(expr) == "authors.name = :name_1"
    assert "LIKE" in str(Author.name.like("a%"))
    assert "IN" in str(Author.age.in_([1, 2]))
    assert "DESC" in str(Author.name.desc())
    assert "IS NULL" in str(Author.email.is_(None))


def test_tablename_defaults_to_snake_case_and_connection_to_default() -> None:
    class BlogPost(ActiveRecord):
        __connection__ = "models_test_default_names"
        title: str = StringField()

    assert BlogPost.__tablename__ == "blog_post"
    assert BlogPost.__table__.c.title.type.length == 255
    # No primary key declared: an auto-increment ``id`` is added first.
    assert list(BlogPost.__table__.c.keys()) == ["id", "title"]
    assert ActiveRecord.__connection__ == "default"


def test_each_connection_has_its_own_metadata() -> None:
    assert User.__table__.metadata is metadata_for("users")
    assert Order.__table__.metadata is metadata_for("orders")
    assert "orders" not in metadata_for("users").tables
    assert User in models_for("users") and Order not in models_for("users")


def test_composite_index_and_unique_constraint() -> None:
    table = Everything.__table__
    assert {tuple(c.name for c in ix.columns) for ix in table.indexes} >= {("small", "big")}
    uniques = [c for c in table.constraints if isinstance(c, sa.UniqueConstraint)]
    assert [tuple(c.name for c in u.columns) for u in uniques] == [("label", "day")]


def test_abstract_models_share_fields() -> None:
    class Stamped(ActiveRecord):
        __abstract__ = True
        __connection__ = "models_test_abstract"
        note: str = StringField(default="")

    class Thing(Stamped):
        name: str = StringField()

    assert list(Thing.__table__.c.keys()) == ["id", "note", "name"]
    with pytest.raises(ConfigurationError, match="abstract"):
        Stamped()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"save": IntegerField()}, "would hide ActiveRecord methods"),
        ({"a": PrimaryKeyField(), "b": PrimaryKeyField()}, "composite primary keys"),
        ({"__indexes__": [("nope",)], "x": IntegerField()}, "unknown field"),
        ({"__indexes__": ["x"], "x": IntegerField()}, "tuples of field names"),
    ],
)
def test_bad_declarations_are_refused(body: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        type("Bad", (ActiveRecord,), {"__connection__": "models_test_bad", **body})


def test_two_models_cannot_claim_one_table() -> None:
    class First(ActiveRecord):
        __connection__ = "models_test_dup"
        __tablename__ = "same"

    with pytest.raises(ConfigurationError, match="already declared"):

        class Second(ActiveRecord):
            __connection__ = "models_test_dup"
            __tablename__ = "same"

    assert First.__tablename__ == "same"


def test_constructor_applies_defaults_and_refuses_unknown_fields() -> None:
    a = Author(name="ada")
    assert a.active is True and a.role == "member" and a.id is None and a.email is None
    first, second = Everything(), Everything()
    assert isinstance(first.token, uuid.UUID) and first.token != second.token  # callable default
    with pytest.raises(UnknownFieldError) as info:
        Author(name="ada", nmae="typo", admin=True)
    assert set(info.value.errors) == {"nmae", "admin"}


def test_validation_names_every_bad_field() -> None:
    bad = Author(name="x" * 101, age="old", active=None, role="owner")
    with pytest.raises(ValidationError) as info:
        bad.validate()
    errors = info.value.errors
    assert set(errors) == {"name", "age", "active", "role"}
    assert "longer than 100" in errors["name"][0]
    assert "expected int" in errors["age"][0]
    assert errors["active"] == ["may not be null"]
    assert "not one of" in errors["role"][0]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("small", True),
        ("small", 1.5),
        ("ratio", "1"),
        ("price", "1.00"),
        ("flag", 1),
        ("day", dt.datetime(2024, 1, 1, tzinfo=dt.UTC)),
        ("moment", dt.datetime(2024, 1, 1)),  # naive datetimes are refused
        ("token", "not-a-uuid"),
        ("doc", {1, 2}),
        ("label", 5),
    ],
)
def test_type_checks(field: str, value: object) -> None:
    with pytest.raises(ValidationError) as info:
        Everything(**{field: value}).validate()
    assert list(info.value.errors) == [field]


def test_valid_values_of_every_kind_pass() -> None:
    Everything(
        small=1,
        big=2**40,
        label="ok",
        body="long text",
        flag=True,
        ratio=1,
        price=decimal.Decimal("9.99"),
        day=dt.date(2024, 1, 1),
        moment=dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
        doc={"nested": [1, 2, {"x": None}]},
    ).validate()


def test_to_dict_is_json_ready() -> None:
    import json

    e = Everything(
        price=decimal.Decimal("1.50"),
        day=dt.date(2024, 2, 3),
        moment=dt.datetime(2024, 2, 3, 4, 5, tzinfo=dt.UTC),
        doc={"a": 1},
    )
    d = e.to_dict()
    assert d["price"] == "1.50" and d["day"] == "2024-02-03"
    assert d["moment"] == "2024-02-03T04:05:00+00:00"
    assert d["token"] == str(e.token)
    json.dumps(d)
    assert e.to_dict(only=["small", "label"]) == {"small": 0, "label": ""}
    assert "doc" not in e.to_dict(exclude=["doc"])


def test_repr_masks_secrets() -> None:
    class Account(ActiveRecord):
        __connection__ = "models_test_secret"
        login: str = StringField()
        password_hash: str = StringField()

    text = repr(Account(login="ada", password_hash="s3cret"))
    assert "s3cret" not in text and "ada" in text
