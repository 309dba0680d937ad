"""The brokers `bench.patterns` relays to: a destination of the run's own on each, its publisher,
how many messages reached it, and its removal.

Each run declares its own RabbitMQ queue (durable, so publisher confirms wait for the broker's
disk as in production), NATS JetStream stream (file storage, the default) and Redis stream, all
named by the run's tag, and deletes them when it ends.
"""

from __future__ import annotations

import os
from typing import Any, Protocol

BROKERS = {
    "rabbitmq": "RabbitMQ (publisher confirms)",
    "nats": "NATS JetStream (acked publish)",
    "redis": "Redis Streams (XADD)",
}

RABBITMQ_URL = os.environ.get("BENCH_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")
NATS_URL = os.environ.get("BENCH_NATS_URL", "nats://127.0.0.1:4222")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")


class Destination(Protocol):
    """One broker's destination for one run."""

    topic: str

    def publisher(self) -> Any:
        """A new `AsyncPublisher` to this broker (the relay owns and closes it)."""

    async def server_version(self) -> str:
        """The broker server's name and version."""

    async def count(self) -> int:
        """Messages the destination holds."""

    async def purge(self) -> None:
        """Empty the destination between passes."""

    async def delete(self) -> None:
        """Remove the destination and close the side connection."""


class _RabbitMQ:
    def __init__(self, tag: str) -> None:
        self.topic = f"bench-patterns-{tag}"
        self._connection: Any = None
        self._queue: Any = None

    async def open(self) -> None:
        import aio_pika

        self._connection = await aio_pika.connect(RABBITMQ_URL)
        channel = await self._connection.channel()
        self._queue = await channel.declare_queue(self.topic, durable=True)

    def publisher(self) -> Any:
        from activerecord.patterns.brokers.rabbitmq import RabbitMQPublisher

        return RabbitMQPublisher(RABBITMQ_URL)

    async def server_version(self) -> str:
        properties = self._connection.transport.connection.server_properties
        return f"RabbitMQ {properties.get('version', '?')}"

    async def count(self) -> int:
        declared = await self._queue.declare()  # passive re-declare: the current message count
        return int(declared.message_count or 0)

    async def purge(self) -> None:
        await self._queue.purge()

    async def delete(self) -> None:
        try:
            await self._queue.delete(if_unused=False, if_empty=False)
        finally:
            await self._connection.close()


class _Nats:
    def __init__(self, tag: str) -> None:
        self.stream = f"BENCH_PATTERNS_{tag}"
        self.topic = f"bench-patterns-{tag}.events"
        self._client: Any = None
        self._js: Any = None

    async def open(self) -> None:
        import nats

        self._client = await nats.connect(NATS_URL)
        self._js = self._client.jetstream()
        await self._js.add_stream(name=self.stream, subjects=[self.topic])

    def publisher(self) -> Any:
        from activerecord.patterns.brokers.nats import NatsPublisher

        return NatsPublisher(NATS_URL)

    async def server_version(self) -> str:
        version = self._client.connected_server_version
        return f"NATS {version.major}.{version.minor}.{version.patch}"

    async def count(self) -> int:
        return int((await self._js.stream_info(self.stream)).state.messages)

    async def purge(self) -> None:
        await self._js.purge_stream(self.stream)

    async def delete(self) -> None:
        try:
            await self._js.delete_stream(self.stream)
        finally:
            await self._client.close()


class _Redis:
    def __init__(self, tag: str) -> None:
        self.topic = f"bench-patterns-{tag}"
        self._client: Any = None

    async def open(self) -> None:
        import redis.asyncio as aioredis

        self._client = aioredis.from_url(REDIS_URL)

    def publisher(self) -> Any:
        from activerecord.patterns.brokers.redis import RedisStreamPublisher

        return RedisStreamPublisher(REDIS_URL)

    async def server_version(self) -> str:
        return f"Redis {(await self._client.info('server'))['redis_version']}"

    async def count(self) -> int:
        return int(await self._client.xlen(self.topic))

    async def purge(self) -> None:
        await self._client.delete(self.topic)

    async def delete(self) -> None:
        try:
            await self._client.delete(self.topic)
        finally:
            await self._client.aclose()


async def destination(name: str, tag: str) -> Destination:
    """Broker ``name``'s destination for the run ``tag``, declared on the broker."""
    made: _RabbitMQ | _Nats | _Redis = {"rabbitmq": _RabbitMQ, "nats": _Nats, "redis": _Redis}[name](tag)
    await made.open()
    return made
