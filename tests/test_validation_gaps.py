"""Values no column can hold are refused with `ValidationError` before any SQL (NaN, infinities,
decimals past the scale or the precision, NUL characters, integers past the column's range),
decimals read the same before and after a round trip, and limits, offsets, sort names and
value labels take only what every backend takes. Every backend, both modes."""

from __future__ import annotations

import decimal

import pytest
from sqlalchemy import event, func

from activerecord import ActiveRecord, ConnectionManager, DecimalField, Field, PrimaryKeyField
from activerecord.errors import QueryError, ValidationError

from .dual import IO
from .models import Everything


class Price(ActiveRecord):
    __tablename__ = "vg_prices"

    id: Field[int] = PrimaryKeyField()
    exact: Field[decimal.Decimal] = DecimalField(precision=6, scale=2, default=decimal.Decimal("0"))
    rounded: Field[decimal.Decimal] = DecimalField(
        precision=6, scale=2, rounding=decimal.ROUND_HALF_EVEN, default=decimal.Decimal("0")
    )


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("ratio", float("nan"), "finite"),
        ("ratio", float("inf"), "finite"),
        ("ratio", float("-inf"), "finite"),
        ("ratio", 10**400, "finite"),
        ("price", decimal.Decimal("NaN"), "finite"),
        ("price", decimal.Decimal("sNaN"), "finite"),
        ("price", decimal.Decimal("Infinity"), "finite"),
        ("price", float("nan"), "finite"),
        ("price", decimal.Decimal("1.005"), "decimal places"),
        ("price", decimal.Decimal("123456789"), "digits before"),
        ("label", "a\x00", "NUL"),
        ("body", "\x00", "NUL"),
        ("small", 2**31, "out of range"),
        ("small", -(2**31) - 1, "out of range"),
        ("big", 2**63, "out of range"),
        ("big", -(2**63) - 1, "out of range"),
    ],
)
async def test_values_no_column_holds_are_refused(db: IO, field: str, value: object, message: str) -> None:
    with pytest.raises(ValidationError, match=message) as refused:
        await db(Everything).create(**{"label": "x", field: value})
    assert field in refused.value.errors
    record = await db(Everything).create(label="y")
    with pytest.raises(ValidationError, match=message):
        await db(record).update(**{field: value})
    with pytest.raises(ValidationError, match=message):
        await db(Everything).bulk_insert([{"label": "z", field: value}])
    with pytest.raises(ValidationError, match=message):
        await db(Everything).insert_many([{"label": "z", field: value}])
    assert await db(Everything.find()).count() == 1
    assert (await db(record).reload()).label == "y"


async def test_the_edges_of_each_range_are_stored(db: IO) -> None:
    edges = {"small": 2**31 - 1, "big": 2**63 - 1, "price": decimal.Decimal("99999999.99"), "ratio": 1e300}
    record = await db(Everything).create(label="hi", **edges)
    back = await db(Everything.find_by_id(record.id)).one()
    assert {k: getattr(back, k) for k in edges} == edges
    low = await db(Everything).create(label="lo", small=-(2**31), big=-(2**63))
    assert (await db(low).reload()).big == -(2**63)


async def test_decimals_read_the_same_before_and_after_a_round_trip(db: IO) -> None:
    made = await db(Price).create(exact=decimal.Decimal("5.5"), rounded=3)
    assert made.to_dict()["exact"] == "5.50" and made.exact == decimal.Decimal("5.50")
    assert str(made.rounded) == "3.00"
    back = await db(Price.find_by_id(made.id)).one()
    assert back.to_dict() == made.to_dict()
    assert Price(exact=decimal.Decimal("1.5")).to_dict()["exact"] == "1.50"  # before any save too
    await db(made).update(exact=7)
    assert made.to_dict()["exact"] == "7.00" == (await db(Price.find_by_id(made.id)).one()).to_dict()["exact"]


async def test_extra_places_round_only_with_a_rounding_mode(db: IO) -> None:
    with pytest.raises(ValidationError, match="decimal places"):
        await db(Price).create(exact=decimal.Decimal("1.005"))
    made = await db(Price).create(rounded=decimal.Decimal("1.005"))  # half-even: 1.00
    assert made.rounded == decimal.Decimal("1.00")
    assert (await db(made).reload()).rounded == decimal.Decimal("1.00")
    await db(Price).bulk_insert([{"rounded": decimal.Decimal("2.005")}])  # half-even here too: 2.00
    assert await db(Price.find().where(rounded=decimal.Decimal("2.00"))).count() == 1
    with pytest.raises(ValidationError, match="digits before"):
        await db(Price).create(rounded=decimal.Decimal("9999.995"))  # rounds up to 10000.00
    with pytest.raises(ValueError, match="rounding"):
        DecimalField(rounding="UP")


async def test_nan_never_reaches_the_driver(db: IO) -> None:
    statements: list[str] = []

    def seen(conn: object, cursor: object, statement: str, *args: object) -> None:
        statements.append(statement)

    # The engine of the mode under test (asyncmy, aiosqlite, asyncpg in async mode).
    engine = ConnectionManager.async_engine("default").sync_engine if db.is_async else ConnectionManager.engine()
    event.listen(engine, "before_cursor_execute", seen)
    try:
        for value in (decimal.Decimal("NaN"), float("nan"), decimal.Decimal("-Infinity")):
            with pytest.raises(ValidationError):
                await db(Everything).create(label="nan", price=value)
            with pytest.raises(QueryError):
                await db(Everything.find().where(price=value)).count()
        await db(Everything).create(label="fine", price=decimal.Decimal("1.25"))
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert len(statements) == 1 and "INSERT" in statements[0]  # the listener sees this mode's statements


@pytest.mark.parametrize("bad", [True, False, -1, 2**63, 10**20, 1.0, "1", None.__class__])
async def test_limit_and_offset_refuse_what_no_backend_takes(db: IO, bad: object) -> None:
    with pytest.raises(QueryError):
        Everything.find().limit(bad)  # type: ignore[arg-type]
    with pytest.raises(QueryError):
        Everything.find().offset(bad)  # type: ignore[arg-type]


async def test_the_largest_limit_and_offset_run(db: IO) -> None:
    await db(Everything).create(label="one")
    assert len(await db(Everything.find().limit(2**63 - 1)).all()) == 1
    assert await db(Everything.find().order_by("id").limit(5).offset(2**62)).all() == []


async def test_order_by_takes_one_minus_at_most(db: IO) -> None:
    for name in ("--label", "- label", "-", "", "label desc", "-label-"):
        with pytest.raises(QueryError):
            Everything.find().order_by(name)
    await db(Everything).create(label="a")
    await db(Everything).create(label="b", day=None)
    assert [r.label for r in await db(Everything.find().order_by("-label")).all()] == ["b", "a"]


@pytest.mark.parametrize("label", ["", "\x00", "a b", "n;", "1n", "\uff4e", "x" * 64, "count_1\x00"])
async def test_value_labels_are_plain_identifiers(db: IO, label: str) -> None:
    with pytest.raises(QueryError, match="label"):
        await db(Everything.find()).values(**{label: func.count()})


async def test_plain_labels_come_back_as_given(db: IO) -> None:
    await db(Everything).create(label="a")
    assert await db(Everything.find()).values(n=func.count(), _Total_2=func.count()) == [{"n": 1, "_Total_2": 1}]
