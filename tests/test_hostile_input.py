"""Hostile input on every identifier and value surface: refused with an `ActiveRecordError`, or
bound as a parameter; never spliced into SQL.

Each property runs on every backend in both modes. "Never spliced" is checked two ways: a value
written and then searched for comes back exactly (it travelled as a parameter), and a canary
table is intact after every example (no statement did more than it should).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from activerecord import ActiveRecord
from activerecord.errors import ActiveRecordError

from .dual import IO
from .models import Author, Everything

INJECTIONS = [
    "x'; DROP TABLE authors; --",
    "' OR '1'='1",
    '" OR "1"="1',
    "`name`",
    "name; DELETE FROM authors",
    "name--",
    "name/**/",
    "1); DROP TABLE authors; --",
    "\\",
    "%",
    "_",
    "\\'",
    "$1",
    "?",
    ":name",
    "%(name)s",
    "\x00",
    "name\x00",
    "\uff2e\uff21\uff2d\uff25",  # full-width NAME
    "name desc",
    "--name",
    "-",
    "",
    " name",
    "authors.name",
    "(SELECT 1)",
    "name)",
]
texts = st.one_of(st.sampled_from(INJECTIONS), st.text(max_size=30))
identifiers = st.one_of(st.sampled_from(INJECTIONS), st.text(max_size=20))
anything = st.one_of(
    texts,
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
    st.binary(max_size=10),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
    st.datetimes(),
    st.decimals(allow_nan=True),
)

EXAMPLES = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,
)


async def _canary_intact(db: IO) -> None:
    assert await db(Everything.find()).count() == 1


@pytest.fixture
async def canary(db: IO) -> IO:
    await db(Everything).create(label="canary", day=dt.date(2020, 1, 1))
    return db


async def _refused_or_ran(call: Callable[[], Awaitable[Any]]) -> Any:
    """The call's result, or None when building or running it was refused with an ActiveRecordError."""
    try:
        return await call()
    except ActiveRecordError:
        return None


@EXAMPLES
@given(name=texts)
async def test_string_values_are_bound(canary: IO, name: str) -> None:
    db = canary
    await db(Author.find()).delete_all()
    stored = await _refused_or_ran(lambda: db(Author).create(name=name))
    found = await _refused_or_ran(lambda: db(Author.find().where(name=name)).count())
    found_expr = await _refused_or_ran(lambda: db(Author.find().where(Author.name == name)).count())
    # A value no field can hold (a NUL) is refused by the query as by create; anything else is found.
    assert found == found_expr == (1 if stored is not None else None if "\x00" in name else 0)
    if stored is not None:
        back = await db(Author.find().where(Author.name == name)).one()
        assert back.name == name  # exactly what was written: it travelled as a parameter
    like = await _refused_or_ran(lambda: db(Author.find().where(Author.name.like(name))).count())
    assert like in (None, 0, 1)
    await _canary_intact(db)


@EXAMPLES
@given(key=identifiers, value=anything)
async def test_where_keywords_are_refused_or_bound(canary: IO, key: str, value: Any) -> None:
    db = canary
    result = await _refused_or_ran(lambda: db(Everything.find().where(**{key: value})).count())
    if key not in Everything.__fields__:
        assert result is None  # an unknown name never reaches SQL
    await _canary_intact(db)


@EXAMPLES
@given(name=identifiers)
async def test_order_by_names_are_refused_unless_fields(canary: IO, name: str) -> None:
    db = canary
    result = await _refused_or_ran(lambda: db(Everything.find().order_by(name)).all())
    bare = name[1:] if name.startswith("-") else name
    if bare not in Everything.__fields__ or name.startswith("--"):
        assert result is None
    await _canary_intact(db)


@EXAMPLES
@given(names=st.lists(identifiers, min_size=1, max_size=3))
async def test_pluck_values_and_group_by_names_are_refused_unless_fields(canary: IO, names: list[str]) -> None:
    db = canary
    known = all(n in Everything.__fields__ for n in names)
    for call in (
        lambda: db(Everything.find()).pluck(*names),
        lambda: db(Everything.find()).values(*names),
        lambda: db(Everything.find().group_by(*names)).values(*names),
    ):
        result = await _refused_or_ran(call)
        if not known:
            assert result is None
    await _canary_intact(db)


@EXAMPLES
@given(label=identifiers)
async def test_value_labels_are_refused_or_quoted(canary: IO, label: str) -> None:
    from sqlalchemy import func

    db = canary
    result = await _refused_or_ran(lambda: db(Everything.find()).values(**{label: func.count()}))
    if result is not None:
        assert result == [{label: 1}]  # the label the caller asked for, never a made-up one
    await _canary_intact(db)


@EXAMPLES
@given(limit=anything, offset=anything)
async def test_limit_and_offset_take_only_sane_integers(canary: IO, limit: Any, offset: Any) -> None:
    db = canary
    result = await _refused_or_ran(lambda: db(Everything.find().limit(limit).offset(offset)).all())
    sane = all(
        v is None or (isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2**63) for v in (limit, offset)
    )
    if not sane:
        assert result is None
    await _canary_intact(db)


@EXAMPLES
@given(cursor=st.one_of(texts, st.binary(max_size=40).map(lambda b: b.hex())))
async def test_garbled_cursors_are_refused(canary: IO, cursor: str) -> None:
    db = canary
    result = await _refused_or_ran(lambda: db(Everything.find().order_by("-id")).paginate(10, after=cursor))
    assert result is None or len(result.items) <= 1
    await _canary_intact(db)


@EXAMPLES
@given(value=texts)
async def test_raw_sql_binds_round_trip(canary: IO, value: str) -> None:
    db = canary
    result = await _refused_or_ran(lambda: db(ActiveRecord).execute_raw("SELECT :v AS v", {"v": value}))
    if result is not None:
        assert result.scalar() == value
    await _canary_intact(db)


@EXAMPLES
@given(path=identifiers, value=anything)
async def test_json_values_are_bound(canary: IO, path: str, value: Any) -> None:
    db = canary
    await _refused_or_ran(lambda: db(Everything.find().where(Everything.doc[path].as_string() == str(value))).count())
    await _canary_intact(db)
