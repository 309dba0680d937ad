"""Keyset pagination (cursors bound to their query) and numbered pagination (page, total,
pages), in both modes on every backend."""

from __future__ import annotations

import base64
import datetime as dt
import json

import pytest
from sqlalchemy import func

from activerecord import ActiveRecord, IntegerField, NumberedPage, PrimaryKeyField, StringField, TimestampField
from activerecord.errors import QueryError

from .dual import IO


class Score(ActiveRecord):
    __tablename__ = "pg_scores"
    __connection__ = "orders"

    id: int = PrimaryKeyField()
    player: str = StringField(max_length=20)
    points: int = IntegerField()
    bonus: int | None = IntegerField(nullable=True)
    played_at: dt.datetime = TimestampField()


class Team(ActiveRecord):
    __tablename__ = "pg_teams"
    __connection__ = "orders"

    id: int = PrimaryKeyField()
    points: int = IntegerField()


def _payload(cursor: str) -> dict[str, object]:
    return json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))  # type: ignore[no-any-return]


def _cursor(payload: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


async def scores(db: IO, n: int = 23) -> None:
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    await db(Score).insert_many(
        [{"player": f"p{i:02}", "points": i % 7, "played_at": start + dt.timedelta(hours=i % 5)} for i in range(n)]
    )


async def test_keyset_pagination_walks_every_row_once(db: IO) -> None:
    await scores(db)
    expected = await db(Score.find().order_by("-points", "id")).pluck("id")
    seen: list[int] = []
    cursor = None
    pages = 0
    while True:
        page = await db(Score.find().order_by("-points")).paginate(5, after=cursor)
        seen.extend(s.id for s in page.records)
        pages += 1
        if not page.has_more:
            break
        cursor = page.next_cursor
    assert seen == expected and pages == 5
    # after() is a builder too, and filters combine with it.
    first = await db(Score.find().where(Score.points > 2).order_by("-points")).paginate(4)
    assert first.next_cursor is not None
    rest = await db(Score.find().where(Score.points > 2).order_by("-points").after(first.next_cursor)).all()
    assert [s.id for s in first] + [s.id for s in rest] == [
        i for i in await db(Score.find().where(Score.points > 2).order_by("-points", "id")).pluck("id")
    ]


async def test_keyset_pagination_by_a_timestamp(db: IO) -> None:
    await scores(db, 12)
    query = Score.find().order_by("-played_at", "player")
    first = await db(query).paginate(5)
    assert first.next_cursor is not None
    second = await db(query).paginate(5, after=first.next_cursor)
    expected = await db(Score.find().order_by("-played_at", "player", "id")).pluck("id")
    assert [s.id for s in first] + [s.id for s in second] == expected[:10]


async def test_a_cursor_fits_only_its_own_query(db: IO) -> None:
    await scores(db)
    cursor = (await db(Score.find().order_by("-points")).paginate(5)).next_cursor
    assert cursor is not None
    # Same number of sort keys, other direction or other column or other table: refused before
    # any SQL, on every backend, instead of a wrong page (or a driver error on PostgreSQL).
    for query in (
        Score.find().order_by("points"),
        Score.find().order_by("player"),
        Score.find().order_by("-points", "player"),
        Score.find(),
        Team.find().order_by("-points"),
    ):
        with pytest.raises(QueryError, match="another order_by"):
            await db(query).paginate(5, after=cursor)
        with pytest.raises(QueryError, match="another order_by"):
            query.after(cursor)
    # The cursor's own query still takes it, with filters added.
    page = await db(Score.find().where(Score.points < 6).order_by("-points")).paginate(5, after=cursor)
    assert all(s.points <= 5 for s in page)


async def test_a_garbled_or_tampered_cursor_is_refused(db: IO) -> None:
    await scores(db)
    cursor = (await db(Score.find().order_by("-points")).paginate(5)).next_cursor
    assert cursor is not None
    payload = _payload(cursor)
    assert payload["k"] == ["-points", "id"]
    query = Score.find().order_by("-points")
    tampered = [
        "%%%",
        cursor[:-3],
        _cursor([3, 2]),  # a bare list of values
        _cursor({**payload, "v": ["three", 2]}),  # a text where points is an int
        _cursor({**payload, "v": [3]}),  # a value missing
        _cursor({**payload, "v": [None, 2]}),
        _cursor({**payload, "v": [{"dt": "yesterday"}, 2]}),
        _cursor({**payload, "v": [{"evil": "x"}, 2]}),
        _cursor({**payload, "v": [True, 2]}),
        _cursor({**payload, "extra": 1}),
    ]
    for bad in tampered:
        with pytest.raises(QueryError, match="not a pagination cursor"):
            await db(query).paginate(5, after=bad)
    by_time = Score.find().order_by("-played_at")
    good = (await db(by_time).paginate(2)).next_cursor
    assert good is not None
    with pytest.raises(QueryError, match="not a pagination cursor"):
        by_time.after(_cursor({**_payload(good), "v": [12, 1]}))  # a number where a timestamp is
    with pytest.raises(QueryError, match="not a pagination cursor"):
        by_time.after(123)  # type: ignore[arg-type]
    # The same query still works after each refusal.
    assert len(await db(query).paginate(5, after=cursor)) == 5


async def test_a_null_sort_value_ends_pagination_with_an_error(db: IO) -> None:
    await scores(db, 4)
    await db(Score.find()).update_all(bonus=None)
    with pytest.raises(QueryError, match="NULL 'bonus'"):
        await db(Score.find().order_by("bonus")).paginate(2)


def test_pagination_errors() -> None:
    with pytest.raises(QueryError, match="own columns"):
        Score.find().order_by(func.lower(Score.player)).after("x")
    with pytest.raises(QueryError, match="positive"):
        Score.find().paginate(0)
    with pytest.raises(QueryError, match="remove limit"):
        Score.find().limit(3).paginate(2)
    for number, size in ((0, 5), (1, 0), (-1, 5), ("2", 5), (1, True), (1.0, 5)):
        with pytest.raises(QueryError, match="positive int"):
            Score.find().page(number, size)  # type: ignore[arg-type]
    with pytest.raises(QueryError, match="remove limit"):
        Score.find().offset(3).page(1, 2)


# -- numbered pages -----------------------------------------------------------------------------


async def test_numbered_pages(db: IO) -> None:
    await scores(db)
    expected = await db(Score.find().order_by("-points", "id")).pluck("id")
    query = Score.find().order_by("-points")  # ties in points: the primary key breaks them
    seen: list[int] = []
    for number in range(1, 6):
        page = await db(query).page(number, 5)
        assert isinstance(page, NumberedPage)
        assert (page.number, page.size, page.total, page.pages) == (number, 5, 23, 5)
        assert page.has_previous == (number > 1)
        assert page.has_next == (number < 5)
        seen.extend(s.id for s in page)
    assert seen == expected
    assert len(await db(query).page(5, 5)) == 3
    past = await db(query).page(9, 5)
    assert (past.records, past.total, past.has_next, past.has_previous) == ([], 23, False, True)


async def test_numbered_pages_of_a_filtered_unordered_or_empty_query(db: IO) -> None:
    await scores(db)
    high = Score.find().where(Score.points >= 5)
    ids = await db(high.order_by("id")).pluck("id")
    first = await db(high).page(1, 4)
    second = await db(high).page(2, 4)
    assert [s.id for s in first] + [s.id for s in second] == ids  # unordered: by primary key
    assert (second.total, second.pages, second.has_next) == (len(ids), 2, False)
    none = await db(Score.find().where(player="nobody")).page(1, 10)
    assert (none.records, none.total, none.pages, none.has_next, none.has_previous) == ([], 0, 0, False, False)
