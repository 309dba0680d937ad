"""Lifecycle hooks, after_commit/after_rollback, and custom validators, in both modes on every backend."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from activerecord import ActiveRecord, IntegerField, PrimaryKeyField, StringField, validates
from activerecord.errors import ConfigurationError, ValidationError

from .dual import IO
from .models import Author

EVENTS: list[str] = []


class Audited(ActiveRecord):
    __tablename__ = "hook_audited"

    id: int = PrimaryKeyField()
    name: str = StringField(max_length=50)
    slug: str = StringField(max_length=50, default="")

    def before_validate(self) -> None:
        EVENTS.append("before_validate")
        self.slug = (self.name or "").lower()

    def after_validate(self) -> None:
        EVENTS.append("after_validate")

    def before_save(self) -> None:
        EVENTS.append("before_save")
        if self.name == "forbidden":
            raise PermissionError("no")

    def before_create(self) -> None:
        EVENTS.append("before_create")

    def after_create(self) -> None:
        EVENTS.append(f"after_create:{self.id is not None}")

    def before_update(self) -> None:
        EVENTS.append("before_update")

    def after_update(self) -> None:
        EVENTS.append("after_update")

    def after_save(self) -> None:
        EVENTS.append("after_save")
        if self.name == "explode-after":
            raise RuntimeError("after_save failed")

    def before_delete(self) -> None:
        EVENTS.append("before_delete")

    def after_delete(self) -> None:
        EVENTS.append("after_delete")

    def after_commit(self) -> None:
        EVENTS.append(f"after_commit:{self.name}")

    def after_rollback(self) -> None:
        EVENTS.append(f"after_rollback:{self.name}")


class AuditLog(ActiveRecord):
    __tablename__ = "hook_audit_log"

    id: int = PrimaryKeyField()
    note: str = StringField(max_length=100)


class Journaled(ActiveRecord):
    """A hook that writes another row: it commits or rolls back with the save."""

    __tablename__ = "hook_journaled"

    id: int = PrimaryKeyField()
    name: str = StringField(max_length=50)

    def after_create(self) -> None:
        AuditLog.create(note=f"created {self.name}")
        if self.name == "fail":
            raise RuntimeError("hook failed after writing")


class AsyncJournaled(ActiveRecord):
    """`Journaled` for async code: the hook's I/O is awaited."""

    __tablename__ = "hook_async_journaled"

    id: int = PrimaryKeyField()
    name: str = StringField(max_length=50)

    async def after_create(self) -> None:
        await AuditLog.acreate(note=f"created {self.name}")
        if self.name == "fail":
            raise RuntimeError("hook failed after writing")


class AsyncHooked(ActiveRecord):
    __tablename__ = "hook_async"

    id: int = PrimaryKeyField()
    name: str = StringField(max_length=50)

    async def before_save(self) -> None:
        await asyncio.sleep(0)
        EVENTS.append("async before_save")

    async def after_create(self) -> None:
        await AuditLog.acreate(note=f"async {self.name}")

    async def after_commit(self) -> None:
        await asyncio.sleep(0)
        EVENTS.append(f"async after_commit:{self.name}")


class Booking(ActiveRecord):
    __tablename__ = "hook_bookings"

    id: int = PrimaryKeyField()
    email: str = StringField(max_length=100)
    starts: int = IntegerField()
    ends: int = IntegerField()
    seats: int = IntegerField(default=1, validators=[lambda v: None if v > 0 else "must be positive"])

    @validates("email")
    def _email_has_at(self, value: str) -> str | None:
        return None if "@" in value else "must contain @"

    @validates("email")
    def _email_is_lowercase(self, value: str) -> list[str]:
        return [] if value == value.lower() else ["must be lowercase"]

    @validates()
    def _ends_after_start(self) -> dict[str, str] | None:
        if self.starts is not None and self.ends is not None and self.ends < self.starts:
            return {"ends": "is before starts"}
        return None

    @validates()
    def _capacity(self) -> str | None:
        return "fully booked" if self.seats is not None and self.seats > 10 else None


@pytest.fixture(autouse=True)
def _clear_events() -> None:
    EVENTS.clear()


async def test_hooks_run_in_order_around_create_update_and_delete(db: IO) -> None:
    record = await db(Audited).create(name="Ada")
    assert record.slug == "ada"
    assert EVENTS == [
        "before_validate",
        "after_validate",
        "before_save",
        "before_create",
        "after_create:True",
        "after_save",
        "after_commit:Ada",
    ]
    EVENTS.clear()
    await db(record).update(name="Bea")
    assert EVENTS == [
        "before_validate",
        "after_validate",
        "before_save",
        "before_update",
        "after_update",
        "after_save",
        "after_commit:Bea",
    ]
    assert (await db(Audited.find_by_id(record.id)).one()).slug == "bea"
    EVENTS.clear()
    assert await db(record).delete() is True
    assert EVENTS == ["before_delete", "after_delete", "after_commit:Bea"]
    assert await db(Audited.find()).count() == 0


async def test_after_commit_waits_for_the_outermost_transaction(db: IO) -> None:
    async with db.transaction(Audited):
        await db(Audited).create(name="a")
        async with db.transaction(Audited):
            await db(Audited).create(name="b")
        assert not [e for e in EVENTS if e.startswith("after_commit")]
    assert [e for e in EVENTS if e.startswith("after_commit")] == ["after_commit:a", "after_commit:b"]


async def test_after_rollback_instead_of_after_commit_when_the_transaction_fails(db: IO) -> None:
    with pytest.raises(KeyError):
        async with db.transaction(Audited):
            await db(Audited).create(name="gone")
            raise KeyError("abort")
    assert "after_rollback:gone" in EVENTS
    assert not [e for e in EVENTS if e.startswith("after_commit")]
    assert await db(Audited.find()).count() == 0

    EVENTS.clear()
    async with db.transaction(Audited):
        await db(Audited).create(name="kept")
        with pytest.raises(ValueError):
            async with db.transaction(Audited):
                await db(Audited).create(name="inner")
                raise ValueError("savepoint")
    assert "after_rollback:inner" in EVENTS and "after_commit:kept" in EVENTS
    assert "after_commit:inner" not in EVENTS
    assert [a.name for a in await db(Audited.find()).all()] == ["kept"]


async def test_a_failing_hook_writes_nothing(db: IO) -> None:
    with pytest.raises(PermissionError):
        await db(Audited).create(name="forbidden")
    with pytest.raises(RuntimeError):
        await db(Audited).create(name="explode-after")
    assert "after_rollback:explode-after" in EVENTS
    assert await db(Audited.find()).count() == 0


async def test_hook_io_joins_the_save_transaction(db: IO) -> None:
    model: Any = AsyncJournaled if db.is_async else Journaled
    await db(model).create(name="ok")
    with pytest.raises(RuntimeError):
        await db(model).create(name="fail")
    assert [j.name for j in await db(model.find()).all()] == ["ok"]
    assert [a.note for a in await db(AuditLog.find()).all()] == ["created ok"]


async def test_async_hooks_are_awaited_in_async_mode_and_refused_in_sync_mode(db: IO) -> None:
    if db.is_async:
        record = await AsyncHooked.acreate(name="x")
        assert EVENTS == ["async before_save", "async after_commit:x"]
        assert [a.note for a in await AuditLog.find().aall()] == ["async x"]
        await record.aupdate(name="y")
        assert EVENTS[-1] == "async after_commit:y"
    else:
        with pytest.raises(ConfigurationError, match=r"async hooks .*asave\(\)"):
            await db(AsyncHooked).create(name="x")
        assert await db(AsyncHooked.find()).count() == 0 and EVENTS == []


def test_models_without_features_keep_the_plain_paths() -> None:
    assert not Author._ar_lifecycle and not Author._ar_checks and not Author._ar_relations
    assert Author._ar_default_ext is None
    assert Audited._ar_lifecycle and "after_commit" in Audited._ar_hooks
    assert AsyncHooked._ar_async_hooks == {"before_save", "after_create", "after_commit"}


async def test_validators_collect_every_error_in_one_validation_error(db: IO) -> None:
    with pytest.raises(ValidationError) as caught:
        await db(Booking).create(email="Nobody", starts=5, ends=2, seats=11)
    errors: dict[str, Any] = caught.value.errors
    assert errors == {
        "email": ["must contain @", "must be lowercase"],
        "ends": ["is before starts"],
        "__all__": ["fully booked"],
    }
    with pytest.raises(ValidationError) as caught:
        await db(Booking).create(email=None, starts=1, ends=2, seats=0)
    assert caught.value.errors == {"email": ["may not be null"], "seats": ["must be positive"]}
    assert await db(Booking.find()).count() == 0

    booking = await db(Booking).create(email="a@b.c", starts=1, ends=2)
    booking.ends = 0
    with pytest.raises(ValidationError, match="ends: is before starts"):
        await db(booking).save()
    assert (await db(Booking.find_by_id(booking.id)).one()).ends == 2
    assert booking.validation_errors() == {"ends": ["is before starts"]}


async def test_bulk_writes_run_the_method_validators_too(db: IO) -> None:
    rows = [{"email": "a@b.c", "starts": 1, "ends": 2}, {"email": "Nobody", "starts": 5, "ends": 2}]
    with pytest.raises(ValidationError) as caught:
        await db(Booking).bulk_insert(rows)
    assert caught.value.errors == {
        "rows[1].email": ["must contain @", "must be lowercase"],
        "rows[1].ends": ["is before starts"],
    }
    assert await db(Booking.find()).count() == 0
    assert await db(Booking).bulk_insert(rows[:1]) == 1


def test_validates_checks_field_names() -> None:
    with pytest.raises(ConfigurationError, match="unknown field"):

        class Broken(ActiveRecord):
            __tablename__ = "hook_broken"
            __connection__ = "hookcheck"
            name: str = StringField()

            @validates("nmae")
            def _check(self, value: str) -> None:
                return None
