"""The prebuilt and generated fast paths give the same results as the general ones."""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
import decimal
import logging
import pickle
import time
import uuid
from typing import Any

import pytest
import sqlalchemy as sa

from activerecord import ActiveRecord, ConnectionManager, Field, IntegerField
from activerecord.errors import QueryError, ValidationError
from tests.backends import BackendDatabases
from tests.dual import IO
from tests.models import Author, Everything


async def test_insert_many_keys_follow_row_order(db: IO) -> None:
    # Enough rows for several multi-row INSERT statements, with a repeated name so that rows
    # are told apart only by their keys' order.
    rows = [{"name": f"a{i % 7}", "age": i} for i in range(2500)]
    authors = await db(Author).insert_many(rows)
    assert [a.age for a in authors] == list(range(2500))
    stored = {a.id: a.age for a in await db(Author.find()).all()}
    assert all(stored[a.id] == a.age for a in authors)


@pytest.mark.backends("sqlite")  # SQLite's rowid numbering
async def test_insert_many_refuses_unknown_sqlite_key_order(db: IO) -> None:
    top = 2**63 - 1  # with this rowid taken, SQLite numbers new rows at random
    with Everything.unprotected():  # (a 64-bit key: Author's 32-bit id cannot hold it)
        await db(Everything).create(id=top, label="last")
    with pytest.raises(QueryError, match="non-consecutive"):
        await db(Everything).insert_many([{"label": f"n{i}"} for i in range(50)])
    assert await db(Everything.find()).count() == 1  # nothing of the refused batch is stored


async def test_find_by_id_terminals(db: IO) -> None:
    a = await db(Author).create(name="ada", age=36)
    await db(Author).create(name="bob", age=40)
    assert (await db(Author.find_by_id(a.id)).one()).name == "ada"
    assert (await db(Author.find_by_id(a.id)).first()).name == "ada"
    assert [x.name for x in await db(Author.find_by_id(a.id)).all()] == ["ada"]
    assert await db(Author.find_by_id(a.id + 1000)).one_or_none() is None
    # Conditions added to a pk lookup still apply.
    assert await db(Author.find_by_id(a.id).where(Author.age > 50)).one_or_none() is None
    assert await db(Author.find_by_id(a.id).where(name="ada")).count() == 1
    assert "WHERE" in Author.find_by_id(a.id).to_sql()


async def test_find_by_id_update_all(db: IO) -> None:
    a = await db(Author).create(name="ada", age=36)
    assert await db(Author.find_by_id(a.id)).update_all(age=37) == 1
    assert (await db(Author.find_by_id(a.id)).one()).age == 37
    assert await db(Author.find_by_id(a.id + 1000)).update_all(age=1) == 0
    with pytest.raises(ValidationError):
        await db(Author.find_by_id(a.id)).update_all(age="old")


async def test_loaded_records_track_changes(db: IO) -> None:
    a = await db(Author).create(name="ada", age=36)
    loaded = await db(Author.find_by_id(a.id)).one()
    assert loaded.changed_fields() == {}
    loaded.age = 37
    assert loaded.changed_fields() == {"age": 37}
    await db(loaded).save()
    assert (await db(Author.find_by_id(a.id)).one()).age == 37


async def _every_kind(db: IO) -> list[Everything]:
    moment = dt.datetime(2024, 5, 1, 12, 30, 0, 123456, tzinfo=dt.UTC)
    return [
        await db(Everything).create(
            small=i,
            big=2**40 + i,
            label=f"l{i}",
            body="b" * i,
            flag=bool(i % 2),
            ratio=i / 4,
            price=decimal.Decimal(f"{i}.25"),
            day=dt.date(2024, 1, 1 + i),
            moment=moment + dt.timedelta(hours=i),
            doc={"i": i, "xs": [1, 2]},
            token=uuid.UUID(int=i + 1),
        )
        for i in range(3)
    ]


def _fields(record: ActiveRecord) -> dict[str, object]:
    return {name: getattr(record, name) for name in type(record).__fields__}


async def test_records_read_in_bulk_hold_what_one_by_one_reads_hold(db: IO) -> None:
    # all() and values() take the driver's rows (or tuples converted by SQLAlchemy's result
    # processors) instead of Row objects; one() takes Rows: every kind of field must agree.
    made = await _every_kind(db)
    everything = sorted(await db(Everything.find()).all(), key=lambda e: e.id)
    for record, original in zip(everything, made, strict=True):
        single = await db(Everything.find_by_id(original.id)).one()
        assert _fields(record) == _fields(single) == _fields(original)
        # (asyncpg hands over its own UUID, a subclass of uuid.UUID, on every path alike)
        assert all(isinstance(getattr(record, k), type(v)) for k, v in _fields(original).items())
        assert record.changed_fields() == {}
    dicts = sorted(await db(Everything.find()).values(), key=lambda d: d["id"])
    assert dicts == [_fields(e) for e in made]
    authors = [await db(Author).create(name=f"a{i}", age=i) for i in range(3)]
    assert [_fields(a) for a in await db(Author.find().order_by(Author.id)).all()] == [_fields(a) for a in authors]


async def test_values_take_labels_as_given_and_pluck_gives_tuples(db: IO) -> None:
    await db(Author).create(name="ada", age=36)
    odd = {"Its_Odd": Author.age, "v0": Author.name, "_": Author.id}  # (labels are plain identifiers)
    got = await db(Author.find()).values(Author.name, **odd)
    assert [sorted(d) for d in got] == [sorted(["name", *odd])]
    assert got[0]["Its_Odd"] == 36 and got[0]["v0"] == "ada" and got[0]["name"] == "ada"
    assert await db(Author.find()).pluck(Author.name, Author.age) == [("ada", 36)]


async def test_float_results_are_floats_whatever_the_column_holds(db: IO) -> None:
    # MariaDB's drivers decode FLOAT/DOUBLE columns to float themselves (SQLAlchemy's float()
    # is skipped there); a DECIMAL read as a float is still converted.
    await db(Everything).create(ratio=0.25, price=decimal.Decimal("2.50"))
    got = await db(Everything.find()).values(Everything.ratio, as_float=sa.type_coerce(Everything.price, sa.Float))
    assert got == [{"ratio": 0.25, "as_float": 2.5}]
    assert [type(v) for v in got[0].values()] == [float, float]
    assert type((await db(Everything.find()).all())[0].ratio) is float


async def test_records_pickle_and_copy_with_their_change_tracking(db: IO) -> None:
    await db(Author).create(name="ada", age=36)
    loaded = (await db(Author.find()).all())[0]  # its snapshot may be the driver's own row
    for clone in (pickle.loads(pickle.dumps(loaded)), copy.deepcopy(loaded), copy.copy(loaded)):
        assert _fields(clone) == _fields(loaded) and clone.changed_fields() == {}
        clone.age = 37
        assert clone.changed_fields() == {"age": 37}
    thawed = pickle.loads(pickle.dumps(loaded))
    thawed.age = 40
    await db(thawed).save()
    assert (await db(Author.find_by_id(loaded.id)).one()).age == 40


async def test_rows_logged_by_sql_echo_load_as_records(
    db: IO, backend_dbs: BackendDatabases, caplog: pytest.LogCaptureFixture
) -> None:
    # echo="debug" logs every row, which SQLAlchemy does on Row objects: records still load.
    await _every_kind(db)
    ConnectionManager.configure({"echoing": {**backend_dbs.config("default"), "echo": "debug"}})
    try:
        with caplog.at_level(logging.DEBUG, logger="sqlalchemy.engine"):
            echoed = await db(Everything.find().using("echoing").order_by(Everything.id)).all()
            dicts = await db(Everything.find().using("echoing").order_by(Everything.id)).values()
        assert any(r.getMessage().startswith("Row ") for r in caplog.records)
        plain = await db(Everything.find().order_by(Everything.id)).all()
        assert [_fields(e) for e in echoed] == [_fields(e) for e in plain] == dicts
    finally:
        await db(ConnectionManager).remove("echoing")


def test_fields_are_columns_on_the_model_and_values_on_records() -> None:
    assert Author.name is Author.__table__.c.name
    assert "name" not in vars(Author)  # instance attributes stay on CPython's fast path
    assert Author(name="ada").name == "ada"
    assert vars(Author(name="ada")).keys() == Author.__fields__.keys()  # the bookkeeping is in slots
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        Author.nope  # noqa: B018

    class _Stamped(ActiveRecord):
        __abstract__ = True
        rank: int = IntegerField(default=0)

    assert isinstance(_Stamped.rank, Field)  # an abstract model has no table: its field


async def test_datetimes_come_back_aware_utc(db: IO) -> None:
    moment = dt.datetime(2024, 5, 1, 12, 30, 0, 123456, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    e = await db(Everything).create(moment=moment)
    got = (await db(Everything.find_by_id(e.id)).one()).moment
    assert got == moment and got.utcoffset() == dt.timedelta(0)
    whole = dt.datetime(2024, 5, 1, 0, 0, tzinfo=dt.UTC)  # no microseconds in the stored text
    e2 = await db(Everything).create(moment=whole, label="b")
    assert (await db(Everything.find_by_id(e2.id)).one()).moment == whole


@pytest.mark.backends("mysql")  # the driver decodes DATETIME to aware UTC values itself
async def test_mysql_datetime_is_read_as_utc_by_the_driver(db: IO) -> None:
    moment = dt.datetime(2024, 5, 1, 12, 30, 0, 123456, tzinfo=dt.UTC)
    e = await db(Everything).create(moment=moment)
    values = await db(Everything.find_by_id(e.id)).values(Everything.moment)
    assert values == [{"moment": moment}]
    raw = await db(ActiveRecord).execute_raw(
        "SELECT moment, CAST('2024-01-02 03:04:05.5' AS DATETIME(3)) AS short,"
        " CAST('0000-00-00 00:00:00' AS DATETIME) AS zero, CAST('2024-01-02' AS DATE) AS day"
        " FROM everything WHERE id = :id",
        {"id": e.id},
    )
    row = raw.rows[0]
    assert row["moment"] == moment and row["moment"].tzinfo is dt.UTC  # raw SQL reads UTC too
    assert row["short"] == dt.datetime(2024, 1, 2, 3, 4, 5, 500000, tzinfo=dt.UTC)
    assert row["zero"] == "0000-00-00 00:00:00"  # what Python cannot hold stays text, as before
    assert row["day"] == dt.date(2024, 1, 2)
    later = dt.datetime(2024, 5, 1, 16, 0, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    await db(ActiveRecord).execute_raw("UPDATE everything SET moment = :m WHERE id = :id", {"m": later, "id": e.id})
    stored = await db(ActiveRecord).execute_raw("SELECT CAST(moment AS CHAR) AS t FROM everything")
    assert stored.rows == [{"t": "2024-05-01 14:00:00.000000"}]  # an aware parameter is written in UTC


@pytest.mark.backends("mysql")
async def test_mysql_own_driver_conv_still_gives_aware_fields(db: IO, backend_dbs: BackendDatabases) -> None:
    import importlib

    driver = "asyncmy" if db.is_async else "pymysql"
    conv = dict(importlib.import_module(f"{driver}.converters").conversions)  # the driver's own
    ConnectionManager.configure({"own_conv": {**backend_dbs.config("default"), "connect_args": {"conv": conv}}})
    try:
        moment = dt.datetime(2024, 5, 1, 14, 30, tzinfo=dt.timezone(dt.timedelta(hours=2)))
        e = await db(Everything).create(moment=moment, using="own_conv")
        got = await db(Everything.find_by_id(e.id).using("own_conv")).one()
        assert got.moment == moment and got.moment.tzinfo is dt.UTC
        assert (await db(Everything.find_by_id(e.id)).one()).moment == moment  # same row, default driver setup
    finally:
        await db(ConnectionManager).remove("own_conv")


@pytest.mark.backends("sqlite")  # SQLite stores datetimes as text
async def test_sqlite_text_with_offset_is_read_as_written(db: IO) -> None:
    e = await db(Everything).create()
    with ConnectionManager.engine("default").begin() as conn:
        conn.execute(sa.text("UPDATE everything SET moment = '2024-05-01 12:00:00+02:00' WHERE id = :id"), {"id": e.id})
    got = (await db(Everything.find_by_id(e.id)).one()).moment
    assert got == dt.datetime(2024, 5, 1, 10, 0, tzinfo=dt.UTC)


@pytest.mark.backends("sqlite")
@pytest.mark.modes("async")
async def test_async_sqlite_runs_each_statement_in_one_trip_to_the_driver_thread(
    db: IO, monkeypatch: pytest.MonkeyPatch
) -> None:
    from activerecord.dialects.sqlite_threads import Lane

    trips: list[str] = []
    original = Lane.put_nowait

    def counted(self: Lane, call: Any) -> None:
        pending = getattr(call[1], "__self__", None)  # (a `Pending`'s run)
        trips.append(getattr(getattr(pending, "_call", None), "func", call[1]).__name__)
        original(self, call)

    author = await Author.acreate(name="ada", age=1)
    monkeypatch.setattr(Lane, "put_nowait", counted)
    async with Author.atransaction():
        trips.clear()
        assert (await Author.find_by_id(author.id).aone()).name == "ada"
        assert trips == ["_run_on_thread"]  # execute, fetch and close in one call
        trips.clear()
        assert await Author.find().where(Author.age == 1).aupdate_all(age=2) == 1
        assert await Author.abulk_insert([{"name": "bo"}, {"name": "cy"}]) == 2
        assert trips == ["_run_on_thread", "_run_on_thread"]
        with Author.unprotected(), pytest.raises(sa.exc.IntegrityError):
            await Author.acreate(id=author.id, name="dup")
        trips.clear()
    assert trips == ["commit"]
    # SQLAlchemy's own AsyncConnection (which refuses a call that never awaited) works on it too.
    async with ConnectionManager.async_engine("default").connect() as conn:
        assert (await conn.execute(sa.text("SELECT 1"))).scalar() == 1


@pytest.mark.backends("sqlite")
@pytest.mark.modes("async")
async def test_async_sqlite_holds_the_event_loop_for_no_slow_statement(db: IO) -> None:
    # Quick statements are waited for in place; a slow one is awaited after a few ms at most,
    # and once known to be slow it is awaited from the start: the loop's other tasks run on.
    slow = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1500000) SELECT count(*) FROM c"
    gaps: list[float] = []
    running = True

    async def ticker() -> None:
        last = time.perf_counter()
        while running:
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    ticking = asyncio.create_task(ticker())
    try:
        for _ in range(2):
            started = time.perf_counter()
            assert (await Author.aexecute_raw(slow)).scalar() == 1500000
            assert time.perf_counter() - started > 0.1  # (slow enough for the loop to show it)
    finally:
        running = False
        await ticking
    assert max(gaps) < 0.05
    assert (await Author.aexecute_raw("SELECT 1")).scalar() == 1


async def test_bulk_rows_of_a_table_with_python_defaults_get_them_from_sqlalchemy(db: IO) -> None:
    # Rows go to the driver in its own form only where binding them is all SQLAlchemy would do;
    # a column default computed in Python (a Table of the caller's own) still gets filled in.
    from activerecord.engine import operations
    from activerecord.engine.driver_inserts import compiled_insert

    table = sa.Table(
        "authors",
        sa.MetaData(),
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(100)),
        sa.Column("active", sa.Boolean),
        sa.Column("role", sa.String(20), default=lambda: "admin"),
        sa.Column("created_at", sa.DateTime(timezone=True)),
        sa.Column("updated_at", sa.DateTime(timezone=True)),
    )
    now = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    rows = [{"name": f"n{i}", "active": True, "created_at": now, "updated_at": now} for i in range(3)]

    def insert(conn: sa.Connection) -> None:
        assert compiled_insert(conn, table, tuple(rows[0])) is None
        assert compiled_insert(conn, Author.__table__, ("name",)) is not None
        operations.insert_many(conn, table, rows, None)

    if db.is_async:
        async with ConnectionManager.async_engine("default").begin() as conn:
            await conn.run_sync(insert)
    else:

        def run() -> None:
            with ConnectionManager.engine("default").begin() as conn:
                insert(conn)

        await db.blocking(run)
    assert sorted(a.role for a in await db(Author.find()).all()) == ["admin"] * 3
