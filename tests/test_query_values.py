"""Query values are checked against their fields before any SQL: MariaDB's implicit casts
(`where(reset_token=0)` matching a string, `find_by_id("1abc")` finding id 1) never apply.
Every backend, both modes."""

from __future__ import annotations

import datetime as dt
import decimal
import uuid

import pytest
from sqlalchemy import func

from activerecord import ActiveRecord, Field, PrimaryKeyField, StringField
from activerecord.errors import QueryError

from .dual import IO
from .models import Everything


class Account(ActiveRecord):
    __tablename__ = "qv_accounts"

    id: Field[int] = PrimaryKeyField()
    email: Field[str] = StringField(max_length=100)
    reset_token: Field[str | None] = StringField(max_length=40, nullable=True)


async def test_a_number_never_matches_a_string_column(db: IO) -> None:
    await db(Account).create(email="ada@example.com", reset_token="f3a9c1d2e5b7")
    for query in (
        lambda: Account.find().where(reset_token=0),
        lambda: Account.find().where(Account.reset_token == 0),
        lambda: Account.find().where(Account.reset_token.in_(["x", 0])),
        lambda: Account.find().where(Account.reset_token.between(0, 1)),
        lambda: Account.find().where(Account.reset_token != 0),
    ):
        with pytest.raises(QueryError, match="reset_token"):
            await db(query()).count()
    assert await db(Account.find().where(reset_token="f3a9c1d2e5b7")).count() == 1
    assert await db(Account.find().where(Account.reset_token.in_(["f3a9c1d2e5b7"]))).count() == 1


async def test_find_by_id_takes_only_what_is_an_integer(db: IO) -> None:
    account = await db(Account).create(email="ada@example.com")
    for bad in ("1abc", f"{account.id}abc", "1.0", " 1", 1.0, True, b"1", [1]):
        with pytest.raises(QueryError, match=r"Account\.id"):
            await db(Account.find_by_id(bad)).first()
    # Digits in a string (a URL path parameter) are the number they spell.
    assert (await db(Account.find_by_id(str(account.id))).one()).id == account.id
    assert await db(Account.find().where(id=str(account.id))).count() == 1
    with pytest.raises(QueryError, match="out of range"):
        Account.find_by_id(2**40)  # a 32-bit key column


async def test_expressions_are_checked_not_converted(db: IO) -> None:
    account = await db(Account).create(email="ada@example.com")
    with pytest.raises(QueryError, match=r"qv_accounts\.id"):
        Account.find().where(Account.id == str(account.id))  # where(id="...") converts; expressions do not
    with pytest.raises(QueryError, match="pattern must be a str"):
        Account.find().where(Account.email.like(1))  # type: ignore[arg-type]
    with pytest.raises(QueryError, match="escape character"):
        Account.find().where(Account.email.like("ada\\"))
    # What activerecord cannot see into is the caller's SQL (documented): not refused.
    assert await db(Account.find().where(func.lower(Account.email) == "ada@example.com")).count() == 1
    assert await db(Account.find().where(Account.email.contains("@"), Account.id.in_([account.id]))).count() == 1


async def test_every_field_type_refuses_foreign_values(db: IO) -> None:
    naive = dt.datetime(2024, 1, 1)
    refused = {
        "small": ["1x", 1.5, 2**31, True, None.__class__],
        "big": [2**63, "x"],
        "label": [0, b"x", "a\x00b"],
        "flag": [1, "true"],
        "ratio": [float("nan"), float("inf"), "1.0"],
        "price": [decimal.Decimal("NaN"), decimal.Decimal("-Infinity"), "1.00"],
        "day": [dt.datetime.now(dt.UTC), "2024-01-01"],
        "moment": [naive, dt.date(2024, 1, 1)],
        "token": ["not-a-uuid", 5],
        "doc": [{1: 2}, float("nan"), b"x", {"k": "\x00"}],
    }
    for name, values in refused.items():
        for value in values:
            with pytest.raises(QueryError, match=name):
                Everything.find().where(**{name: value})
    with pytest.raises(QueryError, match="naive"):
        Everything.find().where(Everything.moment > naive)
    token = uuid.uuid4()
    moment = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    await db(Everything).create(label="x", token=token, moment=moment, price=decimal.Decimal("2.50"), small=3)
    assert await db(Everything.find().where(token=str(token))).count() == 1  # a UUID's text converts
    assert await db(Everything.find().where(moment=moment, price=decimal.Decimal("2.5"), small=3)).count() == 1
    assert await db(Everything.find().where(Everything.price > decimal.Decimal("2.49"))).count() == 1
    # A comparison value finer than the column's scale is compared as it is, on every driver.
    assert await db(Everything.find().where(Everything.price > decimal.Decimal("2.495"))).count() == 1
    assert await db(Everything.find().where(Everything.price < decimal.Decimal("2.505"))).count() == 1


async def test_nul_is_refused_anywhere_in_a_condition(db: IO) -> None:
    with pytest.raises(QueryError, match="NUL"):
        Everything.find().where(func.lower(Everything.label) == "a\x00")
    with pytest.raises(QueryError, match="NUL"):
        Everything.find().where(Everything.doc["k\x00"].as_string() == "x")
