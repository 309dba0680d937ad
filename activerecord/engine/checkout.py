"""Warnings about connections held too long: ``checkout_warning`` seconds, with where they were taken.

Off by default, and then nothing is installed on the pool (no cost). When on, every checkout
records the time and the caller's stack (for async code, the stack of the coroutine that waits
on the greenlet bridge too); a connection returned after more than ``checkout_warning`` seconds
is logged on ``activerecord.pool`` at WARNING, and so is one still out at a later checkout from
the same pool (a leaked connection is reported while the pool is in use, not only if it returns).
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
import traceback
from types import FrameType
from typing import Any

import greenlet
from sqlalchemy import Engine, event

log = logging.getLogger("activerecord.pool")

_STACK_DEPTH = 12
_INTERNAL = tuple(
    os.path.dirname(module.__file__ or "") + os.sep
    for module in (sys.modules["sqlalchemy"], sys.modules["asyncio"], greenlet, sys.modules[__name__.split(".")[0]])
)


def _frames() -> list[FrameType]:
    found: list[FrameType] = []
    frame: FrameType | None = sys._getframe(2)
    current = greenlet.getcurrent()
    while True:
        while frame is not None:
            found.append(frame)
            frame = frame.f_back
        # Async code reaches the pool inside a greenlet: its caller waits in the parent's frames.
        parent = current.parent
        if parent is None or parent.gr_frame is None:
            return found
        current, frame = parent, parent.gr_frame


def where_taken() -> str:
    """The caller's stack (innermost last), without SQLAlchemy's, asyncio's and activerecord's frames."""
    frames = _frames()
    outside = [f for f in frames if not f.f_code.co_filename.startswith(_INTERNAL)] or frames
    summary = traceback.StackSummary.extract(((f, f.f_lineno) for f in outside[:_STACK_DEPTH]), lookup_lines=True)
    summary.reverse()
    return "".join(summary.format())


class _Held:
    __slots__ = ("reported", "since", "where")

    def __init__(self) -> None:
        self.since = time.monotonic()
        self.where = where_taken()
        self.reported = False


def install(engine: Engine, seconds: float | None, name: str) -> None:
    """Warn about connections of ``engine`` checked out longer than ``seconds`` (None: never);
    ``name`` says which database in the message (a URL with its password masked)."""
    if seconds is None:
        return
    held: dict[int, _Held] = {}
    lock = threading.Lock()

    def report(entry: _Held, now: float, state: str) -> None:
        entry.reported = True
        log.warning(
            "a connection to %s was checked out for %.1fs (%s; checkout_warning=%gs); taken at:\n%s",
            name,
            now - entry.since,
            state,
            seconds,
            entry.where,
        )

    def on_checkout(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        now = time.monotonic()
        with lock:
            stale = [e for e in held.values() if not e.reported and now - e.since > seconds]
            held[id(record)] = _Held()
        for entry in stale:
            report(entry, now, "still out")

    def on_checkin(dbapi_connection: Any, record: Any) -> None:
        with lock:
            entry = held.pop(id(record), None)
        if entry is not None and not entry.reported:
            now = time.monotonic()
            if now - entry.since > seconds:
                report(entry, now, "returned")

    event.listen(engine, "checkout", on_checkout)
    event.listen(engine, "checkin", on_checkin)
