"""Redis Streams through redis-py (``activerecord[redis]``): an XADD publisher, a consumer-group consumer.

The stream is the topic. Each entry has the fields ``id`` (the outbox message id), ``key``
(empty for none), ``payload`` and ``headers`` (both JSON). Redis has no broker-side dedupe: a
relay's redelivery appears twice in the stream, and consumers drop it with an `Inbox`.
"""

from __future__ import annotations

import json
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from ..messages import Message
from . import _consume, safe_url


class RedisStreamPublisher:
    """An `AsyncPublisher` to Redis Streams; ``apublish`` returns once XADD answered.

    ``maxlen`` caps each stream (approximately, as ``XADD MAXLEN ~``); None keeps every entry.
    """

    def __init__(self, url: str, *, maxlen: int | None = None) -> None:
        self._url = url
        self.maxlen = maxlen
        self._client: aioredis.Redis | None = None

    def __repr__(self) -> str:
        return f"RedisStreamPublisher({safe_url(self._url)!r})"

    async def apublish(self, message: Message) -> None:
        """XADD ``message`` to the stream named by its topic."""
        if self._client is None:
            self._client = aioredis.from_url(self._url)
        fields: dict[Any, Any] = {
            "id": message.id,
            "key": message.key or "",
            "payload": message.body(),
            "headers": json.dumps(dict(message.headers)),
        }
        await self._client.xadd(message.topic, fields, maxlen=self.maxlen, approximate=True)

    async def aclose(self) -> None:
        """Close the connection pool."""
        if self._client is not None:
            await self._client.aclose()
        self._client = None


def decode(stream: str, fields: dict[bytes, bytes]) -> Message:
    """The `Message` a stream entry carries (as `RedisStreamPublisher` wrote it)."""
    key = fields.get(b"key", b"").decode()
    return Message(
        id=fields[b"id"].decode(),
        topic=stream,
        payload=json.loads(fields[b"payload"]),
        key=key or None,
        headers=json.loads(fields.get(b"headers", b"{}")),
    )


class RedisStreamConsumer(_consume.Consumer):
    """Consumes ``stream`` as ``consumer`` of consumer group ``group`` (created when missing) into
    an `Inbox`; XACKs each entry after its transaction committed. A failed entry stays pending
    and is read again (this consumer's pending entries come first on each round)."""

    def __init__(
        self, url: str, stream: str, *, group: str, consumer: str, batch: int = 50, poll_interval: float = 0.2
    ) -> None:
        self._url = url
        self.stream = stream
        self.group = group
        self.consumer = consumer
        self.batch = batch
        self.poll_interval = poll_interval

    def __repr__(self) -> str:
        return f"RedisStreamConsumer({safe_url(self._url)!r}, stream={self.stream!r}, group={self.group!r})"

    async def _ensure_group(self, client: aioredis.Redis) -> None:
        try:
            await client.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def _consume(self, process: _consume.Process, stop: _consume.Stop | None, limit: int | None) -> int:
        handled = 0
        client = aioredis.from_url(self._url)
        try:
            await self._ensure_group(client)
            # "0" re-reads this consumer's unacknowledged entries (a failed handler, a crash);
            # ">" then asks for new ones.
            start = "0"
            while not _consume.done(stop, handled, limit):
                count = self.batch if limit is None else min(self.batch, limit - handled)
                block = None if start == "0" else max(1, int(self.poll_interval * 1000))
                replies: Any = await client.xreadgroup(self.group, self.consumer, {self.stream: start}, count, block)
                entries = [entry for _, stream_entries in replies or [] for entry in stream_entries]
                if not entries:
                    if start == "0":
                        start = ">"
                    continue
                failed = False
                for entry_id, fields in entries:
                    if await process(decode(self.stream, fields)):
                        await client.xack(self.stream, self.group, entry_id)
                        handled += 1
                    else:
                        failed = True
                if failed:
                    start = "0"
                    await _consume.wait(stop, self.poll_interval)
        finally:
            await client.aclose()
        return handled
