"""The public API type-checks the way users rely on: mypy --strict on code written against it."""

from __future__ import annotations

import re
from collections.abc import Callable

MypyCheck = Callable[[str], tuple[str, int]]

GOOD = """
import asyncio
import datetime as dt

from activerecord import ActiveRecord, ConnectionManager, Field, PrimaryKeyField, Query, StringField, TimestampField


class User(ActiveRecord):
    __tablename__ = "users"

    id: Field[int] = PrimaryKeyField()
    name: Field[str] = StringField(max_length=100)
    nickname: Field[str | None] = StringField(max_length=100, nullable=True)
    created_at: Field[dt.datetime] = TimestampField(auto_now_add=True)


def sync_code() -> str:
    user = User(name="a")
    saved: User = user.save()
    query: Query[User] = User.find().where(User.name == "a").limit(3)
    found: User = query.one()
    maybe: User | None = query.first()
    users: list[User] = query.all()
    count: int = query.count()
    with User.transaction():
        User.create(name="b")
    return found.name + saved.name + str(maybe) + str(users) + str(count)


async def async_code() -> str:
    user = await User.acreate(name="a")
    again: User = await User.find_by_id(user.id).aone()
    names: list[str] = [u.name async for u in User.find()]
    async with User.atransaction():
        await again.aupdate(nickname=None)
    return again.name + "".join(names)


ConnectionManager.configure({"default": {"driver": "sqlite"}})
asyncio.run(async_code())
"""

# Typed columns: each expression a user writes with a model's fields, as a type checker sees it.
COLUMNS = """
import datetime as dt
import uuid
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, func, or_

from activerecord import (
    ActiveRecord, BooleanField, Field, ForeignKeyField, IntegerField, JSONField, PrimaryKeyField, Query,
    SoftDeleteField, StringField, TimestampField, UUIDField,
)


class User(ActiveRecord):
    id: Field[int] = PrimaryKeyField()
    name: Field[str] = StringField(max_length=100)
    nickname: Field[str | None] = StringField(nullable=True)
    age: Field[int | None] = IntegerField(nullable=True)
    active: Field[bool] = BooleanField(default=True)
    prefs: Field[dict[str, Any]] = JSONField(default=dict)
    created_at: Field[dt.datetime] = TimestampField(auto_now_add=True)
    deleted_at: Field[dt.datetime | None] = SoftDeleteField()


class Customer(ActiveRecord):  # no primary key declared: the automatic ``id``
    name: Field[str] = StringField()


class Order(ActiveRecord):
    customer_id: Field[int] = ForeignKeyField(Customer)
    referrer_id: Field[int | None] = ForeignKeyField(Customer, nullable=True, on_delete="SET NULL")


class Token(ActiveRecord):  # a primary key of its own, under another name
    key: Field[uuid.UUID] = UUIDField(primary_key=True, default=uuid.uuid4)


class Legacy(ActiveRecord):  # the unannotated style: typed by inference, no constructor argument
    title = StringField()


user = User(name="ada", nickname=None, age=36, prefs={"theme": "dark"})
user.name = "Ada"
user.nickname = None
eq: ColumnElement[bool] = User.name == "x"
like: ColumnElement[bool] = User.name.like("A%")
query: Query[User] = User.find().where(
    User.name == "x",
    User.name.like("A%"),
    User.age >= 18,
    User.active,
    User.nickname.is_(None),
    User.id.in_([1, 2]),
    ~(User.name == "y"),
    and_(User.age > 1, or_(User.name == "a", User.name.startswith("b"))),
    func.lower(User.name) == "ada",
    exists().where(Order.customer_id == User.id),
    name="ada",
    nickname=None,
).order_by(User.name.desc(), "-id")
everywhere: list[User] = User.find().on_all_shards().where(User.name == "x", active=True).all()
customer_id: int = Customer(name="a").id
by_id: Query[Customer] = Customer.find().where(Customer.id == 3)
order = Order(customer_id=customer_id, referrer_id=None)
token_key: uuid.UUID = Token().key
legacy_title: str = Legacy().title
"""

REVEALS = """
import datetime as dt

from activerecord import ActiveRecord, Field, PrimaryKeyField, StringField, TimestampField


class User(ActiveRecord):
    id: Field[int] = PrimaryKeyField()
    name: Field[str] = StringField(max_length=100)
    nickname: Field[str | None] = StringField(nullable=True)
    created_at: Field[dt.datetime] = TimestampField(auto_now_add=True)


class Customer(ActiveRecord):
    name: Field[str] = StringField()


user = User(name="ada")
reveal_type(User.name)  # sqlalchemy.sql.schema.Column[str]
reveal_type(User.name == "x")  # sqlalchemy.sql.elements.ColumnElement[bool]
reveal_type(User.name.like("A%"))  # sqlalchemy.sql.elements.BinaryExpression[bool]
reveal_type(user.name)  # str
reveal_type(user.nickname)  # str | None
reveal_type(user.created_at)  # datetime.datetime
reveal_type(Customer(name="a").id)  # int
reveal_type(Customer.id)  # sqlalchemy.sql.schema.Column[int]
"""

BAD = """
from activerecord import ActiveRecord, Field, PrimaryKeyField, StringField


class User(ActiveRecord):
    id: Field[int] = PrimaryKeyField()
    name: Field[str] = StringField(max_length=100)
    nickname: Field[str | None] = StringField(nullable=True)


class Customer(ActiveRecord):
    name: Field[str] = StringField()


User(name=1)
User(nmae="typo")
n: int = User(name="a").name
x: int = User.find().one()
user = User(name="a")
user.name = 3
user.nickname.upper()
User.find().where(User.name)
User.find().where("name = 'a'")
User.find().where(user.name == "a")
User.nmae
Customer(name="a").idd


class Mismatched(ActiveRecord):
    title: Field[str] = StringField(nullable=True)
    plain: str = StringField()
"""


def test_well_typed_user_code_passes(mypy_check: MypyCheck) -> None:
    out, status = mypy_check(GOOD)
    assert status == 0, out


def test_column_expressions_type_check(mypy_check: MypyCheck) -> None:
    out, status = mypy_check(COLUMNS)
    assert status == 0, out


def test_columns_on_the_class_values_on_the_record(mypy_check: MypyCheck) -> None:
    out, _ = mypy_check(REVEALS)
    lines = enumerate(REVEALS.splitlines(), 1)
    expected = {n: line.split("  # ")[1] for n, line in lines if line.startswith("reveal_type(")}
    revealed = {int(n): t for n, t in re.findall(r':(\d+): note: Revealed type is "([^"]+)"', out)}
    assert revealed == expected, out


def test_mistakes_are_caught(mypy_check: MypyCheck) -> None:
    out, status = mypy_check(BAD)
    assert status == 1
    for message in [
        'Argument "name" to "User" has incompatible type "int"; expected "str"',
        'Unexpected keyword argument "nmae"',
        'Incompatible types in assignment (expression has type "str", variable has type "int")',
        'Incompatible types in assignment (expression has type "User", variable has type "int")',
        'Incompatible types in assignment (expression has type "int", variable has type "str")',
        'Item "None" of "str | None" has no attribute "upper"',
        'Argument 1 to "where" of "Query" has incompatible type "Column[str]"; expected "ColumnElement[bool]"',
        'Argument 1 to "where" of "Query" has incompatible type "str"; expected "ColumnElement[bool]"',
        'Argument 1 to "where" of "Query" has incompatible type "bool"; expected "ColumnElement[bool]"',
        '"type[User]" has no attribute "nmae"',
        '"Customer" has no attribute "idd"',
        # A declaration that disagrees with its field, and the pre-`Field` annotation style.
        'expression has type "Field[str | None]", variable has type "Field[str]"',
        'expression has type "Field[str]", variable has type "str"',
    ]:
        assert message in out, f"{message!r} not in:\n{out}"
    assert out.count(": error:") == 13, out  # one per line above, nothing else


def test_the_typing_adds_nothing_at_run_time() -> None:
    # `Field.__get__`/`__set__` exist for type checkers only: a descriptor on the model class
    # would take record attributes off CPython's specialized (fast) loads and stores.
    from activerecord import ActiveRecord, Field, StringField

    class TypedNote(ActiveRecord):
        __connection__ = "typing_runtime"  # a connection of its own: no other test's tables see it
        title: Field[str] = StringField()

    assert not hasattr(Field, "__get__") and not hasattr(Field, "__set__")
    assert "title" not in vars(TypedNote) and "id" not in vars(TypedNote)
    assert TypedNote.title is TypedNote.__table__.c.title
    assert TypedNote(title="a").title == "a"
