"""What the outbox hands to a broker and a consumer hands to the inbox: `Message`, and the
`Publisher` / `AsyncPublisher` protocols that a relay drives."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from ..errors import ActiveRecordError

#: The header (AMQP, NATS) or field (Redis) that carries a message's ordering key.
KEY_HEADER = "Outbox-Key"


class PublishError(ActiveRecordError):
    """A broker did not accept a message (no confirm, a refusal, an unroutable message)."""


@dataclass(frozen=True)
class Message:
    """One message: ``id`` is unique and stable across redeliveries (the inbox and the brokers'
    dedupe key on it); ``key`` orders the messages of one entity; ``payload`` is a JSON value."""

    id: str
    topic: str
    payload: Any
    key: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    created_at: dt.datetime | None = None
    attempts: int = 0

    def body(self) -> bytes:
        """The payload as UTF-8 JSON, as it travels on the wire."""
        return json.dumps(self.payload, separators=(",", ":")).encode()


@runtime_checkable
class Publisher(Protocol):
    """A blocking publisher: ``publish`` returns once the broker has taken the message (its ack),
    and raises if it did not."""

    def publish(self, message: Message) -> None:
        """Hand ``message`` to the broker; return after its acknowledgement."""

    def close(self) -> None:
        """Release the connection."""


@runtime_checkable
class AsyncPublisher(Protocol):
    """The asyncio form of `Publisher`."""

    async def apublish(self, message: Message) -> None:
        """Hand ``message`` to the broker; return after its acknowledgement."""

    async def aclose(self) -> None:
        """Release the connection."""


class MemoryPublisher:
    """Keeps published messages in a list (tests, examples); both a `Publisher` and an `AsyncPublisher`.

    ``fail`` makes the next that many publishes raise `PublishError`, to show retries.
    """

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.fail = 0
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"MemoryPublisher({len(self.messages)} messages)"

    def publish(self, message: Message) -> None:
        """Append ``message`` (or raise, while ``fail`` is above zero)."""
        with self._lock:
            if self.fail > 0:
                self.fail -= 1
                raise PublishError(f"refused message {message.id} (MemoryPublisher.fail)")
            self.messages.append(message)

    async def apublish(self, message: Message) -> None:
        """`publish` for asyncio."""
        self.publish(message)
        await asyncio.sleep(0)

    def close(self) -> None:
        """Nothing to release."""

    async def aclose(self) -> None:
        """Nothing to release."""
