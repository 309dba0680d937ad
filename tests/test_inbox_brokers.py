"""The consumer adapters: each broker's messages go through the inbox, are acked only after the
transaction committed, and a redelivered message changes the database once."""

from __future__ import annotations

import asyncio

import pytest

from activerecord.patterns import Inbox, Message, Outbox

from .dual import IO
from .patterns.brokers import BROKERS, broker
from .test_inbox import InboxAccount

INBOX = Inbox("default", consumer="billing", table="test_inbox")
OUTBOX = Outbox("default", table="test_outbox")

# The adapters are asyncio code (the broker clients are); the database side runs everywhere in test_inbox.py.
pytestmark = [pytest.mark.backends("sqlite"), pytest.mark.modes("async")]


@pytest.mark.parametrize("name", BROKERS)
async def test_consumer_acks_after_commit_and_drops_the_redelivery(db: IO, name: str) -> None:
    await InboxAccount.acreate(name="ann")
    calls: list[str] = []

    async def credit(message: Message) -> None:
        calls.append(message.id)
        account = await InboxAccount.find().where(InboxAccount.name == message.key).aone()
        await account.aupdate(balance=account.balance + message.payload["amount"])
        if len(calls) == 1:
            raise RuntimeError("the first try fails after its write: nothing commits, nothing is acked")

    async with broker(name) as b:
        message = await OUTBOX.apublish(b.topic, {"amount": 10}, key="ann")
        await b.publisher.apublish(message)
        await b.publisher.apublish(message)  # a relay's redelivery after a crash
        await b.publisher.aclose()
        # JetStream drops the second copy by its Nats-Msg-Id; the others deliver it twice.
        acked = 1 if name == "nats" else 2
        assert await asyncio.wait_for(b.consumer.arun(INBOX, credit, limit=acked), 20) == acked
        assert calls == [message.id, message.id]  # the failure, then the redelivery; the copy did nothing
        assert (await InboxAccount.find().aone()).balance == 10
        assert await INBOX.aseen(message.id)
        # Nothing is left for a consumer started again: every delivery was acked.
        stop = asyncio.Event()
        asyncio.get_running_loop().call_later(0.5, stop.set)
        assert await b.consumer.arun(INBOX, credit, stop=stop) == 0
        assert len(calls) == 2
