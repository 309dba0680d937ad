"""The inbox: a message processed twice changes the database once, on every backend, sync and async."""

from __future__ import annotations

from typing import Any

import pytest

from activerecord import ActiveRecord, IntegerField, StringField
from activerecord.errors import ValidationError
from activerecord.patterns import Inbox, Message

from .dual import IO

INBOX = Inbox("default", consumer="billing", table="test_inbox")
OTHER = Inbox("default", consumer="shipping", table="test_inbox")


class InboxAccount(ActiveRecord):
    __tablename__ = "inbox_accounts"

    name: str = StringField(max_length=50, unique=True)
    balance: int = IntegerField(default=0)


def _credit(db: IO) -> Any:
    """A handler adding the message's amount to the account: it is not idempotent by itself."""

    def credit(message: Message) -> None:
        account = InboxAccount.find().where(InboxAccount.name == message.key).one()
        account.update(balance=account.balance + message.payload["amount"])

    async def acredit(message: Message) -> None:
        account = await InboxAccount.find().where(InboxAccount.name == message.key).aone()
        await account.aupdate(balance=account.balance + message.payload["amount"])

    return acredit if db.is_async else credit


def _message(n: int = 1) -> Message:
    return Message(id=f"m-{n}", topic="payments", payload={"amount": 10}, key="ann")


async def test_a_message_handled_twice_changes_the_database_once(db: IO) -> None:
    await db(InboxAccount).create(name="ann")
    handler = _credit(db)
    assert await db(INBOX).handle(_message(), handler) is True
    assert await db(INBOX).handle(_message(), handler) is False
    assert (await db(InboxAccount.find()).one()).balance == 10
    assert await db(INBOX).seen("m-1") is True
    # Another consumer of the same message processes it once too.
    assert await db(OTHER).handle(_message(), handler) is True
    assert (await db(InboxAccount.find()).one()).balance == 20
    assert await db(INBOX).handle(_message(2), handler) is True
    assert (await db(InboxAccount.find()).one()).balance == 30


async def test_a_failing_handler_leaves_the_message_unprocessed(db: IO) -> None:
    await db(InboxAccount).create(name="ann")
    credit = _credit(db)

    def failing(message: Message) -> None:
        credit(message)
        raise RuntimeError("the handler fails after its write")

    async def afailing(message: Message) -> None:
        await credit(message)
        raise RuntimeError("the handler fails after its write")

    with pytest.raises(RuntimeError):
        await db(INBOX).handle(_message(), afailing if db.is_async else failing)
    assert await db(INBOX).seen("m-1") is False
    assert (await db(InboxAccount.find()).one()).balance == 0
    assert await db(INBOX).handle(_message(), credit) is True
    assert (await db(InboxAccount.find()).one()).balance == 10
    # After the error the same connection works on.
    assert await db(INBOX).handle(_message(), credit) is False


async def test_handle_inside_an_open_transaction_commits_with_it(db: IO) -> None:
    await db(InboxAccount).create(name="ann")
    with pytest.raises(RuntimeError):
        async with db.transaction():
            assert await db(INBOX).handle(_message(), _credit(db)) is True
            raise RuntimeError("the outer transaction rolls back")
    assert await db(INBOX).seen("m-1") is False
    assert (await db(InboxAccount.find()).one()).balance == 0


def test_bad_consumer_and_message_are_refused() -> None:
    with pytest.raises(ValidationError):
        Inbox("default", consumer="")
    with pytest.raises(ValidationError):
        INBOX.handle(Message(id="", topic="t", payload=None), lambda m: None)
