"""NATS JetStream through nats-py (``activerecord[nats]``): an ack'd publisher with broker-side dedupe, a consumer.

The subject is the topic; a stream covering it must exist. The ``Nats-Msg-Id`` header is the
outbox message id, so JetStream drops a republished message inside the stream's duplicate
window (2 minutes by default) and a relay's redelivery after a crash usually reaches no one twice.
"""

from __future__ import annotations

import json

import nats
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.errors import APIError

from ..messages import KEY_HEADER, Message, PublishError
from . import _consume, safe_url

MSG_ID_HEADER = "Nats-Msg-Id"


class NatsPublisher:
    """An `AsyncPublisher` to NATS JetStream; ``apublish`` returns once the stream stored the message."""

    def __init__(self, url: str, *, stream: str | None = None, timeout: float = 5.0) -> None:
        self._url = url
        self.stream = stream
        self.timeout = timeout
        self._client: Client | None = None
        self._js: JetStreamContext | None = None

    def __repr__(self) -> str:
        return f"NatsPublisher({safe_url(self._url)!r}, stream={self.stream!r})"

    async def _open(self) -> JetStreamContext:
        if self._js is None:
            self._client = await nats.connect(self._url)
            self._js = self._client.jetstream()
        return self._js

    async def apublish(self, message: Message) -> None:
        """Publish ``message``; return after JetStream's ack (a duplicate id is acked as such)."""
        js = await self._open()
        headers = {**message.headers, MSG_ID_HEADER: message.id}
        if message.key is not None:
            headers[KEY_HEADER] = message.key
        try:
            await js.publish(message.topic, message.body(), timeout=self.timeout, stream=self.stream, headers=headers)
        except APIError as exc:
            raise PublishError(f"JetStream refused message {message.id} for {message.topic!r}: {exc}") from exc

    async def aclose(self) -> None:
        """Drain and close the connection."""
        if self._client is not None:
            await self._client.close()
        self._client = self._js = None


def decode(msg: Msg) -> Message:
    """The `Message` a JetStream message carries (as `NatsPublisher` sent it)."""
    headers = dict(msg.headers or {})
    message_id = headers.pop(MSG_ID_HEADER, "")
    key = headers.pop(KEY_HEADER, None)
    return Message(id=message_id, topic=msg.subject, payload=json.loads(msg.data), key=key, headers=headers)


class NatsConsumer(_consume.Consumer):
    """Consumes ``subject`` through the durable pull consumer ``durable`` into an `Inbox`; acks each
    message after its transaction committed, naks it (redelivery) when the handler failed."""

    def __init__(
        self,
        url: str,
        subject: str,
        *,
        durable: str,
        stream: str | None = None,
        batch: int = 50,
        poll_interval: float = 0.2,
    ) -> None:
        self._url = url
        self.subject = subject
        self.durable = durable
        self.stream = stream
        self.batch = batch
        self.poll_interval = poll_interval

    def __repr__(self) -> str:
        return f"NatsConsumer({safe_url(self._url)!r}, subject={self.subject!r}, durable={self.durable!r})"

    async def _consume(self, process: _consume.Process, stop: _consume.Stop | None, limit: int | None) -> int:
        handled = 0
        client = await nats.connect(self._url)
        try:
            sub = await client.jetstream().pull_subscribe(self.subject, durable=self.durable, stream=self.stream)
            while not _consume.done(stop, handled, limit):
                want = self.batch if limit is None else min(self.batch, limit - handled)
                try:
                    msgs = await sub.fetch(want, timeout=self.poll_interval)
                except TimeoutError:
                    continue
                for msg in msgs:
                    if await process(decode(msg)):
                        await msg.ack_sync()
                        handled += 1
                    else:
                        await msg.nak()
        finally:
            await client.close()
        return handled
