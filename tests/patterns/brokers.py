"""The three brokers as the tests use them: a fresh destination per test, the publisher for it,
a way to read back what reached the broker, and a consumer adapter for it."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aio_pika
import nats
import redis.asyncio as aioredis

from activerecord.patterns import AsyncPublisher, Message
from activerecord.patterns.brokers import nats as nats_broker
from activerecord.patterns.brokers import rabbitmq
from activerecord.patterns.brokers import redis as redis_broker

RABBITMQ_URL = os.environ.get("AR_TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")
NATS_URL = os.environ.get("AR_TEST_NATS_URL", "nats://127.0.0.1:4222")
REDIS_URL = os.environ.get("AR_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")

BROKERS = ("rabbitmq", "nats", "redis")


@dataclass
class Broker:
    """One broker set up for one test."""

    topic: str
    publisher: AsyncPublisher
    receive: Callable[[int], Awaitable[list[Message]]]  # what reached the broker, in order
    consumer: Any  # the library's consumer adapter on the same destination


@asynccontextmanager
async def _rabbitmq(tag: str) -> AsyncIterator[Broker]:
    connection = await aio_pika.connect(RABBITMQ_URL)
    channel = await connection.channel()
    queue = await channel.declare_queue(f"outbox-test-{tag}", durable=False)

    async def receive(n: int) -> list[Message]:
        got = []
        for _ in range(n):
            incoming = await queue.get(timeout=5)
            await incoming.ack()
            got.append(rabbitmq.decode(incoming))
        return got

    try:
        yield Broker(
            queue.name,
            rabbitmq.RabbitMQPublisher(RABBITMQ_URL),
            receive,
            rabbitmq.RabbitMQConsumer(RABBITMQ_URL, queue.name, poll_interval=0.05),
        )
    finally:
        await queue.delete(if_unused=False, if_empty=False)
        await connection.close()


@asynccontextmanager
async def _nats(tag: str) -> AsyncIterator[Broker]:
    client = await nats.connect(NATS_URL)
    js = client.jetstream()
    stream = f"OUTBOX_TEST_{tag}"
    topic = f"outbox-test-{tag}.events"
    await js.add_stream(name=stream, subjects=[f"outbox-test-{tag}.>"])

    async def receive(n: int) -> list[Message]:
        sub = await js.pull_subscribe(topic, stream=stream)
        msgs = await sub.fetch(n, timeout=5)
        for msg in msgs:
            await msg.ack()
        await sub.unsubscribe()
        return [nats_broker.decode(msg) for msg in msgs]

    try:
        yield Broker(
            topic,
            nats_broker.NatsPublisher(NATS_URL),
            receive,
            nats_broker.NatsConsumer(NATS_URL, topic, durable=f"c{tag}", stream=stream, poll_interval=0.1),
        )
    finally:
        await js.delete_stream(stream)
        await client.close()


@asynccontextmanager
async def _redis(tag: str) -> AsyncIterator[Broker]:
    client = aioredis.from_url(REDIS_URL)
    topic = f"outbox-test-{tag}"

    async def receive(n: int) -> list[Message]:
        entries = await client.xrange(topic)
        return [redis_broker.decode(topic, fields) for _, fields in entries[:n]]

    try:
        yield Broker(
            topic,
            redis_broker.RedisStreamPublisher(REDIS_URL),
            receive,
            redis_broker.RedisStreamConsumer(REDIS_URL, topic, group="g", consumer="c1", poll_interval=0.05),
        )
    finally:
        await client.delete(topic)
        await client.aclose()


@asynccontextmanager
async def broker(name: str) -> AsyncIterator[Broker]:
    """Broker ``name`` with a destination of its own."""
    tag = uuid.uuid4().hex[:8]
    make = {"rabbitmq": _rabbitmq, "nats": _nats, "redis": _redis}[name]
    async with make(tag) as b:
        yield b


async def count_in_stream(name: str) -> int:
    """How many messages a JetStream stream holds (the dedupe check)."""
    client = await nats.connect(NATS_URL)
    try:
        return int((await client.jetstream().stream_info(name)).state.messages)
    finally:
        await client.close()
