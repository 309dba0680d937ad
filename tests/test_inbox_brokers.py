"""The consumer adapters, sync (`run`) and async (`arun`): each broker's messages go through the
inbox, are acked only after the transaction committed, and a redelivery changes the database once."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from activerecord.patterns import Inbox, Message, Outbox

from .dual import IO
from .patterns.brokers import BROKERS, broker
from .test_inbox import InboxAccount

INBOX = Inbox("default", consumer="billing", table="test_inbox")
OUTBOX = Outbox("default", table="test_outbox")

pytestmark = pytest.mark.backends("sqlite")  # the database side runs on every backend in test_inbox.py


async def _consume(db: IO, consumer: Any, handler: Any, **options: Any) -> int:
    """``consumer.arun`` here, or ``consumer.run`` in a thread of its own (it runs its own event loop)."""
    if db.is_async:
        return int(await consumer.arun(INBOX, handler, **options))
    return int(await asyncio.to_thread(consumer.run, INBOX, handler, **options))


@pytest.mark.parametrize("name", BROKERS)
async def test_consumer_acks_after_commit_and_drops_the_redelivery(db: IO, name: str) -> None:
    await db(InboxAccount).create(name="ann")
    calls: list[str] = []

    def credit(message: Message) -> None:
        calls.append(message.id)
        account = InboxAccount.find().where(InboxAccount.name == message.key).one()
        account.update(balance=account.balance + message.payload["amount"])
        if len(calls) == 1:
            raise RuntimeError("the first try fails after its write: nothing commits, nothing is acked")

    async def acredit(message: Message) -> None:
        calls.append(message.id)
        account = await InboxAccount.find().where(InboxAccount.name == message.key).aone()
        await account.aupdate(balance=account.balance + message.payload["amount"])
        if len(calls) == 1:
            raise RuntimeError("the first try fails after its write: nothing commits, nothing is acked")

    handler = acredit if db.is_async else credit
    async with broker(name) as b:
        message = await db(OUTBOX).publish(b.topic, {"amount": 10}, key="ann")
        await b.publisher.apublish(message)
        await b.publisher.apublish(message)  # a relay's redelivery after a crash
        await b.publisher.aclose()
        # JetStream drops the second copy by its Nats-Msg-Id; the others deliver it twice.
        acked = 1 if name == "nats" else 2
        assert await asyncio.wait_for(_consume(db, b.consumer, handler, limit=acked), 20) == acked
        assert calls == [message.id, message.id]  # the failure, then the redelivery; the copy did nothing
        assert (await db(InboxAccount.find()).one()).balance == 10
        assert await db(INBOX).seen(message.id)
        # Nothing is left for a consumer started again: every delivery was acked.
        stop: asyncio.Event | threading.Event = asyncio.Event() if db.is_async else threading.Event()
        asyncio.get_running_loop().call_later(0.5, stop.set)
        assert await _consume(db, b.consumer, handler, stop=stop) == 0
        assert len(calls) == 2
