"""Mass assignment: keywords never set what the model keeps (an auto-increment key, the lock
version, automatic timestamps, the soft-delete mark, ``protected=True`` fields) unless the
caller opens the model with ``Model.unprotected()``. Every backend, both modes."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest

from activerecord import (
    ActiveRecord,
    BooleanField,
    Field,
    PrimaryKeyField,
    SoftDeleteField,
    StringField,
    TimestampField,
    VersionField,
)
from activerecord.errors import ValidationError

from .dual import IO


class Member(ActiveRecord):
    __tablename__ = "ma_members"

    id: Field[int] = PrimaryKeyField()
    name: Field[str] = StringField(max_length=50)
    is_admin: Field[bool] = BooleanField(default=False, protected=True)
    version: Field[int] = VersionField()
    created_at: Field[dt.datetime] = TimestampField(auto_now_add=True)
    updated_at: Field[dt.datetime] = TimestampField(auto_now=True)
    deleted_at: Field[dt.datetime | None] = SoftDeleteField()


class Imported(ActiveRecord):
    """A key the caller gives (ids from `generate_id`, natural keys): assignable on a new record."""

    __tablename__ = "ma_imported"

    id: Field[int] = PrimaryKeyField(big=True, autoincrement=False)
    name: Field[str] = StringField(max_length=50)


LONG_AGO = dt.datetime(2001, 1, 1, tzinfo=dt.UTC)
PROTECTED = {
    "id": 99,
    "is_admin": True,
    "version": 7,
    "created_at": LONG_AGO,
    "updated_at": LONG_AGO,
    "deleted_at": LONG_AGO,
}


@pytest.mark.parametrize("name", sorted(PROTECTED))
async def test_create_and_the_constructor_refuse_protected_fields(db: IO, name: str) -> None:
    body = {"name": "mallory", name: PROTECTED[name]}
    with pytest.raises(ValidationError, match="protected") as refused:
        await db(Member).create(**body)
    assert list(refused.value.errors) == [name]
    with pytest.raises(ValidationError, match=name):
        Member(**body)
    with pytest.raises(ValidationError, match=name):
        await db(Member).insert_many([body])
    assert await db(Member.find().with_deleted()).count() == 0


@pytest.mark.parametrize("name", sorted(set(PROTECTED) - {"id"}))
async def test_update_refuses_protected_fields_before_touching_the_record(db: IO, name: str) -> None:
    member = await db(Member).create(name="ada")
    before = member.to_dict()
    with pytest.raises(ValidationError, match=name):
        await db(member).update(name="eve", **{name: PROTECTED[name]})
    assert member.to_dict() == before and member.changed_fields() == {}
    assert (await db(member).reload()).to_dict() == before


async def test_the_key_of_a_saved_record_never_changes_through_update(db: IO) -> None:
    member = await db(Member).create(name="ada")
    with Member.unprotected(), pytest.raises(ValidationError, match="key"):
        await db(member).update(id=member.id + 1)
    assert member.changed_fields() == {}
    assert (await db(member).reload()).name == "ada"  # still found by its own key
    await db(member).update(id=member.id, name="bo")  # the same key is no change
    assert (await db(Member.find_by_id(member.id)).one()).name == "bo"
    imported = await db(Imported).create(id=5, name="x")
    with pytest.raises(ValidationError, match="key"):
        await db(imported).update(id=6)


async def test_unprotected_opens_the_model_for_imports(db: IO) -> None:
    with Member.unprotected():
        member = await db(Member).create(name="old", **PROTECTED)
    back = await db(Member.find_by_id(99).with_deleted()).one()
    assert (back.id, back.is_admin, back.created_at, back.deleted_at) == (99, True, LONG_AGO, LONG_AGO)
    assert member.version == 7
    with pytest.raises(ValidationError):
        Member(is_admin=True)  # closed again after the block
    with ActiveRecord.unprotected():
        assert Member(name="x", is_admin=True).is_admin  # every model


async def test_caller_keyed_models_take_their_key_on_create(db: IO) -> None:
    record = await db(Imported).create(id=2**62 + 1, name="big id")
    assert (await db(Imported.find_by_id(2**62 + 1)).one()).name == "big id"
    assert record.id == 2**62 + 1 and Imported(id=3, name="n").id == 3


async def test_unprotected_is_per_task() -> None:
    opened = asyncio.Event()
    release = asyncio.Event()

    async def importer() -> None:
        with Member.unprotected():
            opened.set()
            await release.wait()

    task = asyncio.create_task(importer())
    await opened.wait()
    try:
        with pytest.raises(ValidationError):
            Member(name="x", is_admin=True)  # another task's block opens nothing here
    finally:
        release.set()
        await task


async def test_attributes_stay_assignable_in_code(db: IO) -> None:
    member = await db(Member).create(name="ada")
    member.is_admin = True  # the application's own code, not a request body
    await db(member).save()
    assert (await db(member).reload()).is_admin
