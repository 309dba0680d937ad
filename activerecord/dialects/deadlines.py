"""A deadline for each awaited statement, at the cost of a dict entry: the read timeout of async
drivers that have no cheap one of their own (asyncmy).

`asyncio.timeout` around every statement costs a context manager, a timer pushed on the event
loop's heap and its cancellation: about 5 µs a statement, which measured 7% of MariaDB's
throughput under W8's load (100 tasks, a pool of 10). Here a statement enters its task and
deadline in its loop's table and leaves it when it ends; one timer per loop, armed for the
earliest deadline, cancels the tasks whose statements have overrun and re-arms for the next.
With the default read timeout (minutes) it fires once in minutes, whatever the statement rate.

The overrun task sees the cancellation inside the driver's await, as under `asyncio.timeout`,
and `bounded` turns it into the error its caller names. A cancellation of the task's own that
arrives at the same time stays a cancellation (the same ``uncancel`` accounting as
`asyncio.timeout`).
"""

from __future__ import annotations

import asyncio
import math
import weakref
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


class _Deadlines:
    """The waits under way on one event loop, and the one timer.

    A wait is named by a number of its own, not by its task: one task may wait inside another
    of its waits (a statement inside a bounded saga step), and each keeps its own deadline.
    """

    __slots__ = ("__weakref__", "armed_for", "expired", "serial", "timer", "waiting")

    def __init__(self) -> None:
        #: wait -> (its deadline, its task)
        self.waiting: dict[int, tuple[float, asyncio.Task[object]]] = {}
        #: The waits cancelled for their deadline, until they see it.
        self.expired: set[int] = set()
        self.serial = 0
        self.timer: asyncio.TimerHandle | None = None
        #: When the timer fires (infinity while none is armed).
        self.armed_for = math.inf

    def arm(self, loop: asyncio.AbstractEventLoop, when: float) -> None:
        """Fire at ``when``; called only for a deadline sooner than the armed one."""
        if self.timer is not None:
            self.timer.cancel()  # (connections with different timeouts share the loop's table)
        self.timer = loop.call_at(when, self.fire, loop)
        self.armed_for = when

    def fire(self, loop: asyncio.AbstractEventLoop) -> None:
        self.timer = None
        self.armed_for = math.inf
        now = loop.time()
        soonest: float | None = None
        for wait, (deadline, task) in list(self.waiting.items()):
            if deadline <= now:
                del self.waiting[wait]
                self.expired.add(wait)
                task.cancel()
            elif soonest is None or deadline < soonest:
                soonest = deadline
        if soonest is not None:
            self.arm(loop, soonest)


# Weakly keyed: a closed loop's table goes with it (the table holds no reference to its loop).
_by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Deadlines] = weakref.WeakKeyDictionary()


def _deadlines(loop: asyncio.AbstractEventLoop) -> _Deadlines:
    table = _by_loop.get(loop)
    if table is None:
        table = _by_loop[loop] = _Deadlines()
    return table


async def bounded(work: Awaitable[T], seconds: float, overrun: Callable[[], BaseException]) -> T:
    """``await work``; past ``seconds``, it is cancelled and ``overrun()`` raised instead.

    Example (inside a driver adapter)::

        rows = await bounded(cursor.execute(sql), 30.0, lambda: OperationalError(2013, "no answer"))
    """
    loop = asyncio.get_running_loop()
    task = asyncio.current_task(loop)
    if task is None:  # (as asyncio.timeout: a bound needs a task to cancel)
        raise RuntimeError("a bounded wait must run inside an asyncio task")
    table = _deadlines(loop)
    deadline = loop.time() + seconds
    table.serial = wait = table.serial + 1
    table.waiting[wait] = (deadline, task)
    if deadline < table.armed_for:
        table.arm(loop, deadline)
    cancelling = task.cancelling()
    try:
        return await work
    except asyncio.CancelledError:
        if _overran(table, wait) and task.uncancel() <= cancelling:
            raise overrun() from None
        raise
    finally:
        table.waiting.pop(wait, None)
        if _overran(table, wait):
            # Overrun, but the work swallowed the cancellation or raised an error of its own:
            # the task must not stay marked as cancelled.
            task.uncancel()


def _overran(table: _Deadlines, wait: int) -> bool:
    """Whether ``wait`` was cancelled for its deadline (the mark is taken off)."""
    if wait in table.expired:
        table.expired.discard(wait)
        return True
    return False


__all__ = ["bounded"]
