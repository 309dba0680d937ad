"""Building and running queries, in both modes on every backend."""

from __future__ import annotations

import pytest

from activerecord import ConnectionManager, Query
from activerecord.errors import MultipleRecordsFound, QueryError, RecordNotFound

from .dual import IO
from .models import Author


async def _people(db: IO) -> None:
    await db(Author).insert_many(
        [
            {"name": "ada", "age": 36, "role": "admin"},
            {"name": "bob", "age": 25},
            {"name": "cy", "age": None},
            {"name": "dee", "age": 41, "active": False},
        ]
    )


async def test_where_with_expressions_and_keywords(db: IO) -> None:
    await _people(db)
    adults = await db(Author.find().where(Author.age >= 30).order_by(Author.name)).all()
    assert [a.name for a in adults] == ["ada", "dee"]
    assert [a.name for a in await db(Author.find().where(role="admin")).all()] == ["ada"]
    assert [a.name for a in await db(Author.find().where(age=None)).all()] == ["cy"]
    q = Author.find().where(Author.name.in_(["ada", "bob", "zed"]), active=True).order_by("-name")
    assert [a.name for a in await db(q).all()] == ["bob", "ada"]
    assert [a.name for a in await db(Author.find().where(Author.name.like("d%"))).all()] == ["dee"]


async def test_queries_are_immutable(db: IO) -> None:
    await _people(db)
    base = Author.find()
    narrowed = base.where(Author.age > 30)
    assert await db(base).count() == 4 and await db(narrowed).count() == 2


async def test_order_limit_offset(db: IO) -> None:
    await _people(db)
    page = Author.find().order_by(Author.name.desc()).limit(2).offset(1)
    assert [a.name for a in await db(page).all()] == ["cy", "bob"]
    assert await db(page).count() == 2


async def test_one_first_and_one_or_none(db: IO) -> None:
    await _people(db)
    assert (await db(Author.find().where(name="bob")).one()).age == 25
    with pytest.raises(RecordNotFound):
        await db(Author.find().where(name="nobody")).one()
    with pytest.raises(MultipleRecordsFound):
        await db(Author.find().where(active=True)).one()
    with pytest.raises(MultipleRecordsFound):
        await db(Author.find()).one_or_none()
    assert await db(Author.find().where(name="nobody")).one_or_none() is None
    assert (await db(Author.find().order_by("age")).first()).name in {"bob", "cy"}
    assert await db(Author.find().where(name="nobody")).first() is None


async def test_find_by_id(db: IO) -> None:
    await _people(db)
    ada = await db(Author.find().where(name="ada")).one()
    assert (await db(Author.find_by_id(ada.id)).one()).name == "ada"
    with pytest.raises(RecordNotFound):
        await db(Author.find_by_id(ada.id + 1000)).one()
    with pytest.raises(QueryError):
        Author.find_by_id(None)


async def test_count_and_exists(db: IO) -> None:
    assert await db(Author.find()).count() == 0
    assert await db(Author.find()).exists() is False
    await _people(db)
    assert await db(Author.find().where(Author.age > 30)).count() == 2
    assert await db(Author.find().where(name="cy")).exists() is True


async def test_update_all_and_delete_all(db: IO) -> None:
    await _people(db)
    assert await db(Author.find().where(Author.age < 40)).update_all(role="admin") == 2
    assert await db(Author.find().where(role="admin")).count() == 2
    assert await db(Author.find().where(active=False)).delete_all() == 1
    assert await db(Author.find()).count() == 3


async def test_bulk_changes_are_checked_before_sql(db: IO) -> None:
    await _people(db)
    from activerecord.errors import UnknownFieldError, ValidationError

    with pytest.raises(UnknownFieldError):
        await db(Author.find()).update_all(nope=1)
    with pytest.raises(ValidationError):
        await db(Author.find()).update_all(role="owner")
    with pytest.raises(QueryError, match="limit"):
        await db(Author.find().limit(1)).delete_all()
    assert await db(Author.find().where(role="admin")).count() == 1
    assert await db(Author.find()).count() == 4


async def test_batches_and_iteration(db: IO) -> None:
    await db(Author).insert_many([{"name": f"p{i:03}"} for i in range(25)])
    q = Author.find().order_by(Author.name)
    batches = await db.batches(q, 10)
    assert [len(b) for b in batches] == [10, 10, 5]
    assert [a.name for b in batches for a in b] == [f"p{i:03}" for i in range(25)]
    assert [a.name for a in await db.iterate(q)] == [f"p{i:03}" for i in range(25)]


async def test_using_runs_on_another_connection(db: IO) -> None:
    # The model lives on "default"; the same table is created on "users" and read there.
    await db(Author).create_all(using="users")
    try:
        await db(Author).create(name="elsewhere", using="users")
        assert await db(Author.find()).count() == 0
        found = await db(Author.find().using("users")).one()
        assert found.name == "elsewhere"
        found.age = 5
        await db(found).save()  # a record remembers the connection it came from
        assert (await db(Author.find().using("users")).one()).age == 5
    finally:
        await db(Author).drop_all(using="users")


def test_where_refuses_python_values() -> None:
    with pytest.raises(QueryError, match="SQL expressions"):
        Author.find().where("name = 'a'")
    with pytest.raises(QueryError, match="SQL expressions"):
        Author.find().where(True)
    with pytest.raises(QueryError, match="no field"):
        Author.find().where(nmae="a")
    with pytest.raises(QueryError):
        Author.find().order_by("nope")
    with pytest.raises(QueryError):
        Author.find().limit(-1)


async def test_to_sql_in_the_connection_dialect(db: IO, backend: str) -> None:
    q = Author.find().where(Author.name == "ada").order_by(Author.id).limit(5)
    assert isinstance(q, Query)
    sql = q.to_sql()
    assert sql.startswith("SELECT authors.id") and "LIMIT" in sql
    literal = q.to_sql(literal=True)
    assert "'ada'" in literal
    assert ConnectionManager.backend("default") == backend
