"""Optimistic locking with a version field, in both modes on every backend."""

from __future__ import annotations

import decimal

import pytest

from activerecord import ActiveRecord, DecimalField, PrimaryKeyField, StringField, VersionField
from activerecord.errors import StaleObjectError

from .dual import IO


class Account(ActiveRecord):
    __tablename__ = "lock_accounts"

    id: int = PrimaryKeyField()
    owner: str = StringField(max_length=50)
    balance: decimal.Decimal = DecimalField(precision=12, scale=2, default=decimal.Decimal("0"))
    version: int = VersionField()


async def test_each_update_bumps_the_version(db: IO) -> None:
    account = await db(Account).create(owner="ada")
    assert account.version == 1
    await db(account).update(balance=decimal.Decimal("10"))
    assert account.version == 2
    await db(account).save()  # nothing changed: no write, no bump
    assert account.version == 2
    assert (await db(Account.find_by_id(account.id)).one()).version == 2


async def test_a_stale_update_raises_and_writes_nothing(db: IO) -> None:
    account = await db(Account).create(owner="ada")
    mine = await db(Account.find_by_id(account.id)).one()
    theirs = await db(Account.find_by_id(account.id)).one()
    await db(theirs).update(balance=decimal.Decimal("50"))
    with pytest.raises(StaleObjectError, match="since version 1"):
        await db(mine).update(balance=decimal.Decimal("70"), owner="mallory")
    row = await db(Account.find_by_id(account.id)).one()
    assert (row.owner, row.balance, row.version) == ("ada", decimal.Decimal("50"), 2)
    assert mine.version == 1 and mine.changed_fields()  # still dirty: reload and apply again
    await db(mine).reload()
    await db(mine).update(balance=mine.balance + 20)
    assert (await db(Account.find_by_id(account.id)).one()).balance == decimal.Decimal("70")


async def test_a_version_sent_back_by_a_client_is_checked(db: IO) -> None:
    account = await db(Account).create(owner="ada")
    await db(account).update(owner="bea")
    form_version = 1  # the client edited what it read at version 1
    account.version = form_version
    account.owner = "cy"
    with pytest.raises(StaleObjectError):
        await db(account).save()
    assert (await db(Account.find_by_id(account.id)).one()).owner == "bea"


async def test_a_stale_delete_raises_and_deletes_nothing(db: IO) -> None:
    account = await db(Account).create(owner="ada")
    stale = await db(Account.find_by_id(account.id)).one()
    await db(account).update(owner="bea")
    with pytest.raises(StaleObjectError, match="nothing deleted"):
        await db(stale).delete()
    assert await db(Account.find()).count() == 1
    assert await db(account).delete() is True
    assert await db(Account.find()).count() == 0
