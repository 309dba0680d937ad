"""What the broker consumers share: handing each message to an inbox before the broker's ack,
and the sync and async entry points (`Consumer.run`, `Consumer.arun`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Awaitable, Callable
from typing import Any

from ..inbox import Inbox
from ..messages import Message

log = logging.getLogger("activerecord.patterns.brokers")

Handler = Callable[[Message], Awaitable[Any]]
SyncHandler = Callable[[Message], Any]
#: Processes one message; True when the broker may be told it is done, False to have it again.
Process = Callable[[Message], Awaitable[bool]]
Stop = asyncio.Event | threading.Event


def _failed(message: Message) -> bool:
    log.exception("message %s (topic %s) failed; it will be delivered again", message.id, message.topic)
    return False


async def wait(stop: Stop | None, seconds: float) -> None:
    """Sleep ``seconds``, or less when an `asyncio.Event` ``stop`` is set meanwhile."""
    if isinstance(stop, asyncio.Event):
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), seconds)
    else:
        await asyncio.sleep(seconds)


def done(stop: Stop | None, handled: int, limit: int | None) -> bool:
    """Whether a consume loop should end."""
    return (stop is not None and stop.is_set()) or (limit is not None and handled >= limit)


class Consumer:
    """A broker consumer feeding an `Inbox`: subclasses implement `_consume` for one broker."""

    async def _consume(self, process: Process, stop: Stop | None, limit: int | None) -> int:
        raise NotImplementedError

    async def arun(
        self, inbox: Inbox, handler: Handler, *, stop: asyncio.Event | None = None, limit: int | None = None
    ) -> int:
        """Consume until ``stop`` is set or ``limit`` messages were acked; return how many were acked.

        Each message runs ``await handler(message)`` through ``inbox.ahandle`` and is acked once
        that transaction committed (a duplicate is acked without running the handler); a
        message whose handler raised is logged and handed back to the broker for redelivery.
        """

        async def process(message: Message) -> bool:
            try:
                await inbox.ahandle(message, handler)
            except Exception:
                return _failed(message)
            return True

        return await self._consume(process, stop, limit)

    def run(
        self, inbox: Inbox, handler: SyncHandler, *, stop: threading.Event | None = None, limit: int | None = None
    ) -> int:
        """`arun` for sync code: ``handler`` is a plain function run through `Inbox.handle` in a
        worker thread, while the broker client runs on an event loop of this call's own (so call
        it from a thread without a running event loop)."""

        async def process(message: Message) -> bool:
            try:
                await asyncio.to_thread(inbox.handle, message, handler)
            except Exception:
                return _failed(message)
            return True

        return asyncio.run(self._consume(process, stop, limit))
