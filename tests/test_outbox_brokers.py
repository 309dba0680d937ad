"""Each broker's publisher, driven by the relay (sync and async), round-trips messages through
the real server: what a client reads back is what was published in the transaction."""

from __future__ import annotations

import pytest

from activerecord.errors import ConfigurationError
from activerecord.patterns import Outbox, Relay
from activerecord.patterns.brokers import publisher_for_url
from activerecord.patterns.brokers.nats import NatsPublisher
from activerecord.patterns.brokers.rabbitmq import RabbitMQPublisher

from .dual import IO
from .patterns.brokers import BROKERS, NATS_URL, RABBITMQ_URL, broker, count_in_stream

OUTBOX = Outbox("default", table="test_outbox")

pytestmark = pytest.mark.backends("sqlite")  # the database side is covered in test_outbox.py


@pytest.mark.parametrize("name", BROKERS)
async def test_publisher_round_trips_through_the_broker(db: IO, name: str) -> None:
    async with broker(name) as b:
        async with db.transaction():
            first = await db(OUTBOX).publish(b.topic, {"order": 1, "items": ["a", "b"]}, key="o-1", headers={"t": "x"})
            second = await db(OUTBOX).publish(b.topic, {"order": 2})
        relay = Relay(b.publisher, outbox=OUTBOX)
        try:
            assert await db(relay).run_once() == 2
        finally:
            await db(relay).close()
        got = await b.receive(2)
    # Different keys: the relay publishes them concurrently, in no set order.
    got.sort(key=lambda m: m.payload["order"])
    assert [(m.id, m.topic, m.payload, m.key, dict(m.headers)) for m in got] == [
        (first.id, b.topic, {"order": 1, "items": ["a", "b"]}, "o-1", {"t": "x"}),
        (second.id, b.topic, {"order": 2}, None, {}),
    ]


async def test_rabbitmq_unroutable_message_is_a_failure_not_a_delivery(db: IO) -> None:
    await db(OUTBOX).publish("no-queue-is-bound-to-this", {"n": 1})
    relay = Relay(RabbitMQPublisher(RABBITMQ_URL), outbox=OUTBOX, backoff=60)
    try:
        assert await db(relay).run_once() == 0
    finally:
        await db(relay).close()
    row = await db(OUTBOX.model.find()).one()
    assert (row.status, row.attempts) == ("pending", 1)
    assert "NO_ROUTE" in row.last_error


@pytest.mark.modes("async")
async def test_nats_drops_a_republished_message_by_its_id(db: IO) -> None:
    async with broker("nats") as b:
        message = await db(OUTBOX).publish(b.topic, {"n": 1})
        publisher = NatsPublisher(NATS_URL)
        try:
            await publisher.apublish(message)
            await publisher.apublish(message)  # a relay's redelivery after a crash
        finally:
            await publisher.aclose()
        stream = b.topic.split(".")[0].replace("outbox-test-", "OUTBOX_TEST_")
        assert await count_in_stream(stream) == 1


def test_publisher_for_url_picks_the_broker_and_hides_the_password() -> None:
    assert isinstance(publisher_for_url(RABBITMQ_URL), RabbitMQPublisher)
    assert (
        repr(publisher_for_url("amqp://guest:s3cret@host/"))
        == "RabbitMQPublisher('amqp://guest:***@host/', exchange='')"
    )
    with pytest.raises(ConfigurationError, match="kafka") as bad:
        publisher_for_url("kafka://user:s3cret@host")
    assert "s3cret" not in str(bad.value)
