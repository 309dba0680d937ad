"""Soft delete: default scope, with_deleted/only_deleted, restore, hard delete, in both modes on every backend."""

from __future__ import annotations

import datetime as dt

import pytest

from activerecord import (
    ActiveRecord,
    ForeignKeyField,
    PrimaryKeyField,
    SoftDeleteField,
    StringField,
    VersionField,
    has_many,
)
from activerecord.errors import QueryError, RecordNotFound

from .dual import IO
from .models import Author


class Notebook(ActiveRecord):
    __tablename__ = "soft_notebooks"

    id: int = PrimaryKeyField()
    title: str = StringField(max_length=50)
    notes = has_many("Note")


class Note(ActiveRecord):
    __tablename__ = "soft_notes"

    id: int = PrimaryKeyField()
    notebook_id: int = ForeignKeyField(Notebook, on_delete="CASCADE")
    body: str = StringField(max_length=100)
    deleted_at: dt.datetime | None = SoftDeleteField()
    version: int = VersionField()


async def notes(db: IO) -> tuple[Notebook, list[Note]]:
    book = await db(Notebook).create(title="ideas")
    made = [await db(Note).create(notebook_id=book.id, body=f"n{i}") for i in range(4)]
    return book, made


async def test_delete_hides_the_row_from_default_queries(db: IO) -> None:
    _, (_a, b, _c, _d) = await notes(db)
    assert await db(b).delete() is True
    assert b.is_deleted and b.is_persisted and b.deleted_at is not None and b.version == 2
    assert [n.body for n in await db(Note.find().order_by("id")).all()] == ["n0", "n2", "n3"]
    assert await db(Note.find()).count() == 3
    with pytest.raises(RecordNotFound):
        await db(Note.find_by_id(b.id)).one()
    assert await db(Note.find().with_deleted()).count() == 4
    assert [n.body for n in await db(Note.find().only_deleted()).all()] == ["n1"]
    assert await db(Note.find().where(body="n1").with_deleted()).exists()


async def test_restore_brings_a_record_back(db: IO) -> None:
    _, (a, *_rest) = await notes(db)
    await db(a).delete()
    gone = await db(Note.find().only_deleted()).one()
    await db(gone).restore()
    assert not gone.is_deleted
    assert await db(Note.find()).count() == 4 and await db(Note.find().only_deleted()).count() == 0


async def test_hard_delete_removes_the_row(db: IO) -> None:
    _, (a, b, *_rest) = await notes(db)
    assert await db(a).hard_delete() is True
    assert not a.is_persisted
    assert await db(Note.find().with_deleted()).count() == 3
    await db(b).delete()
    assert await db(Note.find().only_deleted()).hard_delete_all() == 1
    assert await db(Note.find().with_deleted()).count() == 2


async def test_delete_all_soft_deletes_the_live_matching_rows(db: IO) -> None:
    await notes(db)
    assert await db(Note.find().where(Note.body.in_(["n0", "n1"]))).delete_all() == 2
    assert await db(Note.find()).count() == 2
    assert await db(Note.find().with_deleted()).count() == 4
    assert await db(Note.find().with_deleted()).update_all(body="x") == 4


async def test_relations_hide_soft_deleted_targets(db: IO) -> None:
    book, (a, *_rest) = await notes(db)
    await db(a).delete()
    loaded = await db(Notebook.find_by_id(book.id).includes("notes")).one()
    assert [n.body for n in loaded.notes] == ["n1", "n2", "n3"]
    assert await db(loaded.notes.find()).count() == 3
    assert await db(loaded.notes.find().with_deleted()).count() == 4


def test_soft_delete_api_needs_a_soft_delete_field() -> None:
    with pytest.raises(QueryError, match="SoftDeleteField"):
        Author.find().with_deleted()
    with pytest.raises(QueryError, match="SoftDeleteField"):
        Author(name="a").restore()
    with pytest.raises(QueryError, match="SoftDeleteField"):
        Author.find().hard_delete_all()
    assert not Author(name="a").is_deleted
