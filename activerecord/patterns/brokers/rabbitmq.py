"""RabbitMQ through aio-pika (``activerecord[rabbitmq]``): a publisher with publisher confirms, a consumer.

A message goes to ``exchange`` (default: the default exchange) with the topic as routing key,
``mandatory`` so that a message no queue takes is refused rather than dropped. The message id is
the AMQP ``message_id`` property; the key travels in the ``Outbox-Key`` header.
"""

from __future__ import annotations

import asyncio
import json

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractIncomingMessage, AbstractRobustConnection

from ..messages import KEY_HEADER, Message, PublishError
from . import _consume, safe_url


class RabbitMQPublisher:
    """An `AsyncPublisher` to RabbitMQ; ``apublish`` returns once the broker confirmed the message."""

    def __init__(self, url: str, *, exchange: str = "", mandatory: bool = True) -> None:
        self._url = url
        self.exchange_name = exchange
        self.mandatory = mandatory
        self._connection: AbstractRobustConnection | None = None
        self._exchange: AbstractExchange | None = None

    def __repr__(self) -> str:
        return f"RabbitMQPublisher({safe_url(self._url)!r}, exchange={self.exchange_name!r})"

    async def _open(self) -> AbstractExchange:
        if self._exchange is None:
            self._connection = await aio_pika.connect_robust(self._url)
            # Confirms make publish() wait for the broker's ack; a returned (unroutable)
            # message raises instead of counting as delivered.
            channel: AbstractChannel = await self._connection.channel(publisher_confirms=True, on_return_raises=True)
            if self.exchange_name:
                self._exchange = await channel.get_exchange(self.exchange_name)
            else:
                self._exchange = channel.default_exchange
        return self._exchange

    async def apublish(self, message: Message) -> None:
        """Publish ``message`` persistently; return after the broker's confirm."""
        exchange = await self._open()
        headers: dict[str, str] = dict(message.headers)
        if message.key is not None:
            headers[KEY_HEADER] = message.key
        amqp = aio_pika.Message(
            message.body(),
            message_id=message.id,
            content_type="application/json",
            headers=headers,  # type: ignore[arg-type]
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            type=message.topic,
        )
        try:
            await exchange.publish(amqp, routing_key=message.topic, mandatory=self.mandatory)
        except aio_pika.exceptions.DeliveryError as exc:
            raise PublishError(f"RabbitMQ refused message {message.id} for {message.topic!r}: {exc}") from exc

    async def aclose(self) -> None:
        """Close the connection."""
        if self._connection is not None:
            await self._connection.close()
            # aiormq finishes closing in tasks of its own; let them run before the loop may end.
            await asyncio.sleep(0.01)
        self._connection = self._exchange = None


def decode(incoming: AbstractIncomingMessage) -> Message:
    """The `Message` an AMQP message carries (as `RabbitMQPublisher` sent it)."""
    headers = {str(k): str(v) for k, v in (incoming.headers or {}).items()}
    key = headers.pop(KEY_HEADER, None)
    return Message(
        id=incoming.message_id or "",
        topic=incoming.type or incoming.routing_key or "",
        payload=json.loads(incoming.body),
        key=key,
        headers=headers,
    )


class RabbitMQConsumer(_consume.Consumer):
    """Consumes queue ``queue`` (which must exist) into an `Inbox`; acks each message after its
    transaction committed, rejects it back to the queue when the handler failed."""

    def __init__(self, url: str, queue: str, *, prefetch: int = 50, poll_interval: float = 0.2) -> None:
        self._url = url
        self.queue = queue
        self.prefetch = prefetch
        self.poll_interval = poll_interval

    def __repr__(self) -> str:
        return f"RabbitMQConsumer({safe_url(self._url)!r}, queue={self.queue!r})"

    async def _consume(self, process: _consume.Process, stop: _consume.Stop | None, limit: int | None) -> int:
        handled = 0
        connection = await aio_pika.connect_robust(self._url)
        try:
            channel = await connection.channel()
            await channel.set_qos(prefetch_count=self.prefetch)
            queue = await channel.get_queue(self.queue, ensure=True)
            while not _consume.done(stop, handled, limit):
                incoming = await queue.get(no_ack=False, fail=False)
                if incoming is None:
                    await _consume.wait(stop, self.poll_interval)
                    continue
                if await process(decode(incoming)):
                    await incoming.ack()
                    handled += 1
                else:
                    await incoming.reject(requeue=True)
        finally:
            await connection.close()
        return handled
