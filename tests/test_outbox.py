"""The transactional outbox and its relay, on every backend, sync and async."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from activerecord import ActiveRecord, IntegerField, StringField, metadata_for
from activerecord.errors import ValidationError
from activerecord.patterns import MemoryPublisher, Message, Outbox, Relay

from .dual import IO

OUTBOX = Outbox("default", table="test_outbox")


class OutboxAccount(ActiveRecord):
    __tablename__ = "outbox_accounts"

    name: str = StringField(max_length=50)
    balance: int = IntegerField(default=0)


def _relay(publisher: Any, **options: Any) -> Relay:
    return Relay(publisher, outbox=OUTBOX, **options)


def test_the_outbox_table_is_a_model_in_the_connections_metadata() -> None:
    # What Alembic's autogenerate reads; declaring the same outbox again reuses the model.
    assert metadata_for("default").tables["test_outbox"] is OUTBOX.table
    assert Outbox("default", table="test_outbox").model is OUTBOX.model
    assert {"message_id", "topic", "key", "payload", "headers", "status", "attempts"} <= set(OUTBOX.table.c.keys())


async def test_publish_commits_with_the_model_writes(db: IO) -> None:
    async with db.transaction():
        await db(OutboxAccount).create(name="ann")
        message = await db(OUTBOX).publish("accounts.opened", {"name": "ann"}, key="ann", headers={"trace": "t1"})
    rows = await db(OUTBOX.model.find()).all()
    assert [(r.message_id, r.topic, r.payload, r.key, r.headers, r.status) for r in rows] == [
        (message.id, "accounts.opened", {"name": "ann"}, "ann", {"trace": "t1"}, "pending")
    ]


async def test_publish_rolled_back_with_the_transaction_leaves_no_message(db: IO) -> None:
    with pytest.raises(RuntimeError):
        async with db.transaction():
            await db(OutboxAccount).create(name="bob")
            await db(OUTBOX).publish("accounts.opened", {"name": "bob"})
            raise RuntimeError("the write fails after publishing")
    assert await db(OutboxAccount.find()).count() == 0
    assert await db(OUTBOX.model.find()).count() == 0
    publisher = MemoryPublisher()
    assert await db(_relay(publisher)).run_once() == 0
    assert publisher.messages == []


async def test_bad_messages_are_refused_before_any_sql(db: IO) -> None:
    with pytest.raises(ValidationError) as bad_payload:
        await db(OUTBOX).publish("t", {"when": object()})
    assert "payload" in bad_payload.value.errors
    with pytest.raises(ValidationError) as bad_headers:
        await db(OUTBOX).publish("t", {}, headers={"n": 1})  # type: ignore[dict-item]
    assert "headers" in bad_headers.value.errors
    with pytest.raises(ValidationError):
        await db(OUTBOX).publish("", {})
    assert await db(OUTBOX.model.find()).count() == 0


async def test_relay_publishes_in_order_marks_sent_and_counts(db: IO) -> None:
    async with db.transaction():
        sent = [await db(OUTBOX).publish("orders", {"n": n}, key=f"k{n % 2}") for n in range(5)]
    before = await db(OUTBOX).stats()
    assert (before.pending, before.sent, before.dead) == (5, 0, 0)
    assert before.lag >= 0.0
    publisher = MemoryPublisher()
    relay = _relay(publisher, batch_size=3)
    assert await db(relay).run_once() == 3
    assert await db(relay).run_once() == 2
    assert await db(relay).run_once() == 0
    assert [m.id for m in publisher.messages] == [m.id for m in sent]
    assert publisher.messages[0] == Message(
        id=sent[0].id, topic="orders", payload={"n": 0}, key="k0", headers={}, created_at=sent[0].created_at
    )
    stats = await db(relay).stats()
    assert (stats.outbox.pending, stats.outbox.sent, stats.published, stats.failed, stats.lag) == (0, 5, 5, 0, 0.0)


async def test_failures_back_off_hold_their_key_and_dead_letter(db: IO) -> None:
    async with db.transaction():
        first = await db(OUTBOX).publish("t", {"n": 1}, key="k")
        second = await db(OUTBOX).publish("t", {"n": 2}, key="k")
        other = await db(OUTBOX).publish("t", {"n": 3}, key="other")
    publisher = MemoryPublisher()
    publisher.fail = 3
    relay = _relay(publisher, max_attempts=3, backoff=0.2)
    # Round 1: "first" fails, so "second" must wait; "other" fails too (the publisher refuses 2).
    assert await db(relay).run_once() == 0
    stats = await db(relay).stats()
    assert (stats.outbox.pending, stats.outbox.retrying, stats.failed) == (3, 2, 2)
    # In backoff nothing is leased, and "second" stays held behind "first".
    assert await db(relay).run_once() == 0
    await asyncio.sleep(0.25)
    assert await db(relay).run_once() == 1  # "first" fails a second time, "other" goes out
    assert [m.id for m in publisher.messages] == [other.id]
    await asyncio.sleep(0.45)
    publisher.fail = 1
    assert await db(relay).run_once() == 0  # the third failure: "first" is dead-lettered
    row = await db(OUTBOX.model.find().where(OUTBOX.model.message_id == first.id)).one()
    assert (row.status, row.attempts) == ("dead", 3)
    assert "PublishError" in row.last_error
    # A dead letter no longer holds its key back.
    assert await db(relay).run_once() == 1
    assert [m.id for m in publisher.messages] == [other.id, second.id]
    stats = await db(relay).stats()
    assert (stats.outbox.dead, stats.outbox.sent, stats.dead_lettered) == (1, 2, 1)


async def test_two_relays_at_once_never_deliver_the_same_row(db: IO) -> None:
    total = 120
    async with db.transaction():
        for n in range(total):
            await db(OUTBOX).publish("t", {"n": n}, key=None if n % 5 == 0 else f"k{n % 7}")
    publisher = MemoryPublisher()  # shared: it records the global publish order
    relays = [_relay(publisher, batch_size=7), _relay(publisher, batch_size=7)]

    def drain_sync(relay: Relay) -> None:
        idle = 0
        while idle < 3:
            idle = idle + 1 if relay.run_once() == 0 else 0

    async def drain_async(relay: Relay) -> None:
        idle = 0
        while idle < 3:
            idle = idle + 1 if await relay.arun_once() == 0 else 0

    if db.is_async:
        await asyncio.gather(*(drain_async(r) for r in relays))
    else:
        threads = [threading.Thread(target=drain_sync, args=(r,)) for r in relays]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    ids = [m.id for m in publisher.messages]
    assert len(ids) == total
    assert len(set(ids)) == total
    by_key: dict[str, list[int]] = {}
    for m in publisher.messages:
        if m.key is not None:
            by_key.setdefault(m.key, []).append(m.payload["n"])
    assert all(ns == sorted(ns) for ns in by_key.values())
    counts = [(await db(r).stats()).published for r in relays]
    assert sum(counts) == total
    assert (await db(OUTBOX).stats()).sent == total


async def test_run_forever_relays_until_stopped(db: IO) -> None:
    publisher = MemoryPublisher()
    relay = _relay(publisher, poll_interval=0.05)
    if db.is_async:
        astop = asyncio.Event()
        task = asyncio.create_task(relay.arun_forever(astop))
    else:
        stop = threading.Event()
        thread = threading.Thread(target=relay.run_forever, args=(stop,))
        thread.start()
    try:
        await db(OUTBOX).publish("t", {"n": 1}, key="k")
        await db(OUTBOX).publish("t", {"n": 2}, key="k")
        for _ in range(200):
            if len(publisher.messages) == 2:
                break
            await asyncio.sleep(0.02)
    finally:
        if db.is_async:
            astop.set()
            await asyncio.wait_for(task, 5)
        else:
            stop.set()
            thread.join(5)
    assert [m.payload for m in publisher.messages] == [{"n": 1}, {"n": 2}]
    assert (await db(OUTBOX).stats()).sent == 2
