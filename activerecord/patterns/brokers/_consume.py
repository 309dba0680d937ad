"""What the broker consumers share: the loop that hands each message to an inbox, acking after commit."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from ..inbox import Inbox
from ..messages import Message

log = logging.getLogger("activerecord.patterns.brokers")

Handler = Callable[[Message], Awaitable[Any]]


async def process(inbox: Inbox, handler: Handler, message: Message) -> bool:
    """Run the handler through the inbox; True when the broker may be told the message is done
    (processed now, or before), False when it failed and must come again."""
    try:
        await inbox.ahandle(message, handler)
    except Exception:
        log.exception("message %s (topic %s) failed; it will be delivered again", message.id, message.topic)
        return False
    return True


async def wait(stop: asyncio.Event | None, seconds: float) -> None:
    """Sleep ``seconds``, or less when ``stop`` is set meanwhile."""
    if stop is None:
        await asyncio.sleep(seconds)
        return
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


def done(stop: asyncio.Event | None, handled: int, limit: int | None) -> bool:
    """Whether a consume loop should end."""
    return (stop is not None and stop.is_set()) or (limit is not None and handled >= limit)
