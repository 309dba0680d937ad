"""The public API type-checks the way users rely on: mypy --strict on code written against it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

GOOD = """
import asyncio
import datetime as dt

from activerecord import ActiveRecord, ConnectionManager, PrimaryKeyField, Query, StringField, TimestampField


class User(ActiveRecord):
    __tablename__ = "users"

    id: int = PrimaryKeyField()
    name: str = StringField(max_length=100)
    nickname: str | None = StringField(max_length=100, nullable=True)
    created_at: dt.datetime = TimestampField(auto_now_add=True)


def sync_code() -> str:
    user = User(name="a")
    saved: User = user.save()
    query: Query[User] = User.find().where(User.__table__.c.name == "a").limit(3)
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

BAD = """
from activerecord import ActiveRecord, PrimaryKeyField, StringField


class User(ActiveRecord):
    id: int = PrimaryKeyField()
    name: str = StringField(max_length=100)


User(name=1)
User(nmae="typo")
n: int = User(name="a").name
x: int = User.find().one()
"""


def test_well_typed_user_code_passes(mypy_check: Callable[[str], tuple[str, int]]) -> None:
    out, status = mypy_check(GOOD)
    assert status == 0, out


def test_mistakes_are_caught(mypy_check: Callable[[str], tuple[str, int]]) -> None:
    out, status = mypy_check(BAD)
    assert status == 1
    assert 'Argument "name" to "User" has incompatible type "int"' in out
    assert 'Unexpected keyword argument "nmae"' in out
    assert 'Incompatible types in assignment (expression has type "str", variable has type "int")' in out
    assert 'Incompatible types in assignment (expression has type "User", variable has type "int")' in out
