"""Saving, updating, deleting and reloading records, in both modes on every backend."""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa

from activerecord import (
    ActiveRecord,
    BooleanField,
    ConnectionManager,
    DateTimeField,
    Field,
    IntegerField,
    PrimaryKeyField,
    StringField,
)
from activerecord.errors import MissingPrimaryKeyError, QueryError, RecordNotFound, UnknownFieldError, ValidationError

from .backends import BackendDatabases
from .dual import IO
from .models import Author, Everything


async def test_save_inserts_then_returns_the_record_with_its_key(db: IO) -> None:
    author = Author(name="ada")
    assert not author.is_persisted
    saved = await db(author).save()
    assert saved is author and author.is_persisted
    assert isinstance(author.id, int)
    assert author.created_at.tzinfo is not None and author.updated_at.tzinfo is not None
    assert (await db(Author.find_by_id(author.id)).one()).name == "ada"


async def test_every_field_kind_round_trips(db: IO) -> None:
    moment = dt.datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    token = uuid.uuid4()
    e = await db(Everything).create(
        small=-5,
        big=2**40,
        label="ten chars!",
        body="x" * 5000,
        flag=True,
        ratio=0.25,
        price=decimal.Decimal("12345678.90"),
        day=dt.date(2024, 2, 29),
        moment=moment,
        doc={"list": [1, 2.5, "three", None, True], "nested": {"k": "v"}},
        token=token,
    )
    back = await db(Everything.find_by_id(e.id)).one()
    assert back.small == -5 and back.big == 2**40 and back.label == "ten chars!"
    assert back.body == "x" * 5000 and back.flag is True and back.ratio == 0.25
    assert back.price == decimal.Decimal("12345678.90")
    assert back.day == dt.date(2024, 2, 29)
    assert back.moment == moment and back.moment.tzinfo is not None
    assert back.doc == {"list": [1, 2.5, "three", None, True], "nested": {"k": "v"}}
    assert back.token == token


async def test_bulk_insert_stores_every_field_kind_as_create_does(db: IO) -> None:
    # bulk_insert hands its rows to the driver with each column's own conversion (JSON, UUID,
    # Decimal, dates, aware datetimes): what it stores must read back as what create stores.
    values = {
        "small": -5,
        "big": 2**40,
        "label": "ünï côdé",
        "body": "x" * 5000,
        "flag": True,
        "ratio": 0.25,
        "price": decimal.Decimal("12345678.90"),
        "day": dt.date(2024, 2, 29),
        "moment": dt.datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=dt.timezone(dt.timedelta(hours=2))),
        "doc": {"list": [1, 2.5, "three", None, True], "nested": {"k": "v"}},
        "token": uuid.uuid4(),
    }
    nulls = {**values, "label": "nulls", "day": None, "moment": None, "doc": None, "token": uuid.uuid4()}
    created = await db(Everything).create(**{**values, "label": "created", "token": uuid.uuid4()})
    assert await db(Everything).bulk_insert([values, nulls, {"label": "defaults"}]) == 3
    stored = {e.label: e for e in await db(Everything.find()).all()}
    fields = [name for name in values if name not in ("label", "token")]
    assert {k: getattr(stored["ünï côdé"], k) for k in fields} == {k: getattr(created, k) for k in fields}
    assert stored["ünï côdé"].token == values["token"] and stored["nulls"].token == nulls["token"]
    assert (stored["nulls"].day, stored["nulls"].moment, stored["nulls"].doc) == (None, None, None)
    defaults = stored["defaults"]
    assert (defaults.small, defaults.flag, defaults.price, defaults.doc) == (0, False, decimal.Decimal("0"), None)
    assert isinstance(defaults.token, uuid.UUID)


async def test_null_json_is_sql_null(db: IO) -> None:
    e = await db(Everything).create(doc=None)
    t = Everything.__table__
    n = await db(Everything.find().where(t.c.doc.is_(None), Everything.id == e.id)).count()
    assert n == 1


async def test_update_writes_only_changed_fields_so_concurrent_changes_survive(db: IO) -> None:
    mine = await db(Author).create(name="ada", age=30)
    theirs = await db(Author.find_by_id(mine.id)).one()
    theirs.age = 31
    await db(theirs).save()
    mine.name = "ada lovelace"
    assert set(mine.changed_fields()) == {"name"}
    await db(mine).save()
    fresh = await db(Author.find_by_id(mine.id)).one()
    assert fresh.name == "ada lovelace" and fresh.age == 31


async def test_save_without_changes_runs_no_sql(db: IO) -> None:
    author = await db(Author).create(name="ada")
    statements: list[str] = []
    engine = (
        ConnectionManager.async_engine("default").sync_engine if db.is_async else ConnectionManager.engine("default")
    )

    def record(*args: object) -> None:
        statements.append(str(args[2]))

    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        await db(author).save()
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)
    assert statements == []


async def test_in_place_json_changes_are_detected(db: IO) -> None:
    e = await db(Everything).create(doc={"tags": ["a"]})
    e.doc["tags"].append("b")
    assert set(e.changed_fields()) == {"doc"}
    await db(e).save()
    assert (await db(Everything.find_by_id(e.id)).one()).doc == {"tags": ["a", "b"]}


async def test_update_sets_and_saves(db: IO) -> None:
    author = await db(Author).create(name="ada")
    before = author.updated_at
    await db(author).update(age=40, role="admin")
    fresh = await db(Author.find_by_id(author.id)).one()
    assert (fresh.age, fresh.role) == (40, "admin")
    assert fresh.updated_at >= before


async def test_bad_update_changes_nothing(db: IO) -> None:
    author = await db(Author).create(name="ada", age=30)
    with pytest.raises(UnknownFieldError):
        await db(author).update(age=31, nope=1)
    assert author.age == 30  # nothing was assigned
    with pytest.raises(ValidationError):
        await db(author).update(age="old")
    fresh = await db(Author.find_by_id(author.id)).one()
    assert fresh.age == 30


async def test_invalid_record_is_not_written(db: IO) -> None:
    with pytest.raises(ValidationError) as info:
        await db(Author).create(name=None, age="x")
    assert set(info.value.errors) == {"name", "age"}
    assert await db(Author.find()).count() == 0


async def test_delete_and_reload(db: IO) -> None:
    author = await db(Author).create(name="ada")
    other = await db(Author.find_by_id(author.id)).one()
    await db(Author.find().where(Author.id == author.id)).update_all(age=50)
    await db(author).reload()
    assert author.age == 50 and author.changed_fields() == {}
    assert await db(author).delete() is True
    assert not author.is_persisted
    assert await db(Author.find()).count() == 0
    with pytest.raises(RecordNotFound):
        await db(other).reload()
    assert await db(other).delete() is False


async def test_saving_a_deleted_record_raises(db: IO) -> None:
    author = await db(Author).create(name="ada")
    stale = await db(Author.find_by_id(author.id)).one()
    await db(author).delete()
    stale.name = "changed"
    with pytest.raises(RecordNotFound):
        await db(stale).save()


async def test_unsaved_records_cannot_be_deleted_or_reloaded(db: IO) -> None:
    with pytest.raises(MissingPrimaryKeyError):
        await db(Author(name="x")).delete()
    with pytest.raises(MissingPrimaryKeyError):
        await db(Author(name="x")).reload()


async def test_primary_key_of_a_saved_record_cannot_change(db: IO) -> None:
    author = await db(Author).create(name="ada")
    author.id = author.id + 100
    with pytest.raises(QueryError):
        await db(author).save()


async def test_unique_violation_raises_the_driver_error_and_keeps_the_first_row(db: IO) -> None:
    await db(Author).create(name="a", email="same@example.com")
    with pytest.raises(sa.exc.IntegrityError):
        await db(Author).create(name="b", email="same@example.com")
    assert [a.name for a in await db(Author.find()).all()] == ["a"]


async def test_insert_many_is_one_statement_with_keys_back(db: IO, backend: str) -> None:
    rows = [{"name": f"n{i}", "age": i} for i in range(50)]
    records = await db(Author).insert_many(rows)
    assert len(records) == 50 and all(r.is_persisted for r in records)
    ids = [r.id for r in records]
    assert all(isinstance(i, int) for i in ids) and len(set(ids)) == 50
    by_id = {a.id: a for a in await db(Author.find()).all()}
    assert [by_id[i].name for i in ids] == [f"n{i}" for i in range(50)]


async def test_insert_many_validates_every_row_before_writing(db: IO) -> None:
    with pytest.raises(ValidationError) as info:
        await db(Author).insert_many([{"name": "ok"}, {"name": None}, {"name": "x", "age": "y"}])
    assert set(info.value.errors) == {"rows[1].name", "rows[2].age"}
    assert await db(Author.find()).count() == 0
    assert await db(Author).insert_many([]) == []


async def test_insert_many_records_are_what_create_returns(db: IO) -> None:
    """The records of insert_many hold what create's would: defaults, timestamps, the key, no
    pending changes; they update, reload and compare like any saved record."""
    made = await db(Author).create(name="single", age=3)
    many = await db(Author).insert_many([{"name": "bulk", "age": 3}, {"name": "other"}])
    first = many[0]
    for name in ("active", "role", "age", "email"):
        assert getattr(first, name) == getattr(made, name)
    assert first.created_at is not None and first.created_at.tzinfo is not None
    assert first.updated_at == first.created_at
    assert first.is_persisted and first.changed_fields() == {}
    assert many[1].age is None and many[1].id != first.id
    first.name = "renamed"
    assert first.changed_fields() == {"name": "renamed"}
    await db(first).save()
    assert first.changed_fields() == {}
    stored = await db(Author.find_by_id(first.id)).one()
    assert stored.name == "renamed" and stored.created_at == first.created_at
    assert stored.to_dict() == first.to_dict()


async def test_insert_many_accepts_records(db: IO) -> None:
    records = [Author(name="a"), Author(name="b")]
    out = await db(Author).insert_many(records)
    assert out == records and records[0].id is not None


async def test_bulk_insert_stores_rows_as_save_would_without_records(db: IO) -> None:
    before = dt.datetime.now(dt.UTC)

    class Name(str):  # valid, but not plainly a str: the full field check decides
        pass

    rows: list[dict[str, object]] = [{"name": f"n{i}", "age": i} for i in range(30)]
    count = await db(Author).bulk_insert([*rows, {"name": Name("sub"), "role": "admin"}, {"name": "x"}])
    assert count == 32
    stored = await db(Author.find().order_by(Author.id)).all()
    assert [a.name for a in stored] == [*(f"n{i}" for i in range(30)), "sub", "x"]
    assert stored[3].age == 3 and stored[-1].age is None and stored[-2].role == "admin"
    assert all(a.active is True and a.role == "member" for a in stored[:30])  # defaults
    assert all(a.created_at >= before - dt.timedelta(seconds=1) and a.updated_at for a in stored)  # timestamps
    assert len({a.id for a in stored}) == 32


class PlainAuthor(ActiveRecord):
    """``authors`` with no defaults or timestamps: its rows need nothing filled in (the bulk
    path then sends the caller's own dicts, read only)."""

    __tablename__ = "authors"
    __connection__ = "plain"  # (the test database, under a name of its own)
    id: Field[int] = PrimaryKeyField()
    name: Field[str] = StringField(max_length=100)
    email: Field[str | None] = StringField(max_length=200, nullable=True)
    age: Field[int | None] = IntegerField(nullable=True)
    active: Field[bool] = BooleanField()
    role: Field[str] = StringField(max_length=20)
    created_at: Field[dt.datetime] = DateTimeField()
    updated_at: Field[dt.datetime] = DateTimeField()


@pytest.fixture
async def plain(db: IO, backend_dbs: BackendDatabases) -> AsyncIterator[None]:
    ConnectionManager.configure({"plain": backend_dbs.config("default")})
    yield
    await ConnectionManager.aremove("plain")


async def test_bulk_writes_leave_the_callers_rows_as_they_were(db: IO, plain: None) -> None:
    at = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)
    rows = [
        {"name": f"p{i}", "email": None, "age": i, "active": True, "role": "member", "created_at": at, "updated_at": at}
        for i in range(4)
    ]
    before = [dict(row) for row in rows]
    assert await db(PlainAuthor).bulk_insert(rows[:2]) == 2
    made = await db(PlainAuthor).insert_many(rows[2:])
    assert rows == before  # nothing added (no key), nothing changed
    made[0].age = 99
    assert rows[2]["age"] == 2  # the records hold values of their own
    stored = await db(PlainAuthor.find().order_by(PlainAuthor.id)).all()
    assert [(a.name, a.age, a.created_at) for a in stored] == [(f"p{i}", i, at) for i in range(4)]
    bad = [*rows, {**rows[0], "name": "n" * 101}]
    with pytest.raises(ValidationError) as info:
        await db(PlainAuthor).bulk_insert(bad)
    assert list(info.value.errors) == ["rows[4].name"] and rows == before
    assert await db(PlainAuthor.find()).count() == 4


async def test_large_bulk_writes_go_out_in_pages_and_stay_all_or_nothing(db: IO) -> None:
    # MariaDB gets executemany in pages of 1,000 rows (a single 1 MB INSERT slowed the reads
    # on that connection afterwards); every page is in the one transaction.
    sizes: list[int] = []

    def count(conn: object, cursor: object, statement: str, params: object, context: object, many: bool) -> None:
        if statement.lstrip().upper().startswith("INSERT"):
            sizes.append(len(params) if many else 1)  # type: ignore[arg-type]

    engine = ConnectionManager.async_engine().sync_engine if db.is_async else ConnectionManager.engine()
    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        rows = [{"name": f"n{i}", "email": f"n{i}@example.com"} for i in range(2500)]
        assert await db(Author).bulk_insert(rows) == 2500
        paged = ConnectionManager.backend() == "mysql"
        assert sizes == ([1000, 1000, 500] if paged else [2500])
        await db(Author).upsert([{**row, "age": 1} for row in rows], conflict=["email"])
        assert await db(Author.find().where(Author.age == 1)).count() == 2500
        dup = [*({"name": f"m{i}", "email": f"m{i}@example.com"} for i in range(2499)), rows[0]]
        with pytest.raises(sa.exc.IntegrityError):
            await db(Author).bulk_insert(dup)  # the last row, in the last page, is a duplicate
        assert await db(Author.find()).count() == 2500  # nothing of the failed call is stored
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)


async def test_bulk_insert_validates_every_row_before_writing(db: IO) -> None:
    with pytest.raises(ValidationError) as info:
        await db(Author).bulk_insert(
            [
                {"name": "ok"},
                {"name": None},
                {"name": "x", "age": "y"},
                {"name": "y" * 101},
                {"name": "z", "role": "boss"},
            ]
        )
    assert set(info.value.errors) == {"rows[1].name", "rows[2].age", "rows[3].name", "rows[4].role"}
    with pytest.raises(ValidationError) as unknown:
        await db(Author).bulk_insert([{"name": "ok", "nickname": "o"}])
    assert list(unknown.value.errors) == ["rows[0].nickname"]
    with pytest.raises(ValidationError) as naive:
        await db(Everything).bulk_insert([{"moment": dt.datetime(2024, 1, 1)}])
    assert list(naive.value.errors) == ["rows[0].moment"]
    with pytest.raises(ValidationError, match="every row or for none"):
        await db(Author).bulk_insert([{"id": 1000, "name": "a"}, {"name": "b"}])
    assert await db(Author.find()).count() == 0 and await db(Everything.find()).count() == 0
    assert await db(Author).bulk_insert([]) == 0


async def test_bulk_insert_leaves_server_defaults_and_takes_explicit_keys(db: IO) -> None:
    assert await db(Setting).bulk_insert([{"key": "c"}, {"key": "d", "value": "x"}]) == 2
    assert {r.key: r.value for r in await db(Setting.find()).all()} == {"c": "on", "d": "x"}
    assert await db(Author).bulk_insert([{"id": 500, "name": "a"}, {"id": 501, "name": "b"}]) == 2
    assert (await db(Author.find_by_id(501)).one()).name == "b"


async def test_execute_raw_uses_bound_parameters(db: IO) -> None:
    await db(Author).create(name="ada", age=36)
    result = await db(ActiveRecord).execute_raw(
        "SELECT name, age FROM authors WHERE name = :name", {"name": "ada'; DROP TABLE authors; --"}
    )
    assert result.rows == []
    result = await db(ActiveRecord).execute_raw("SELECT name, age FROM authors WHERE name = :name", {"name": "ada"})
    assert result.rows == [{"name": "ada", "age": 36}] and result.columns == ["name", "age"]
    changed = await db(ActiveRecord).execute_raw("UPDATE authors SET age = :age", {"age": 37})
    assert changed.rowcount == 1
    with pytest.raises(QueryError):
        await db(ActiveRecord).execute_raw("SELECT 1", ("positional",))


class Setting(ActiveRecord):
    __tablename__ = "settings"

    key: str = StringField(max_length=50)
    value: str = StringField(max_length=50, server_default="on")


async def test_server_defaults_fill_missing_values(db: IO, backend: str) -> None:
    s = await db(Setting).create(key="a")
    fresh = await db(Setting.find_by_id(s.id)).one()
    assert fresh.value == "on"
    if backend != "mysql":  # MySQL/MariaDB return only the key of an insert
        assert s.value == "on"
    explicit = await db(Setting).create(key="b", value="off")
    assert (await db(Setting.find_by_id(explicit.id)).one()).value == "off"
    rows = await db(Setting).insert_many([{"key": "c"}, {"key": "d", "value": "x"}, {"key": "e"}])
    assert [r.key for r in rows] == ["c", "d", "e"]
    stored = {r.key: r.value for r in await db(Setting.find()).all()}
    assert stored["c"] == "on" and stored["d"] == "x" and stored["e"] == "on"
    if backend != "mysql":
        assert len({r.id for r in rows}) == 3
