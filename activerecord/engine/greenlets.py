"""Sync operations run from async code: SQLAlchemy's greenlet bridge, with the greenlets reused.

`AsyncConnection.run_sync` starts a new greenlet for every call. The first Python frame a new
greenlet runs makes CPython map a fresh frame-stack chunk (a 16 KiB ``mmap``, unmapped again
when the greenlet ends, its pages faulted in anew each time): about 8 µs per call, and about
20 µs per statement that waits on the server, measured on PostgreSQL with asyncpg. Here a
worker greenlet that has finished an operation waits, with its chunk, for the next one.

The protocol is SQLAlchemy's own (``sqlalchemy.util.concurrency.greenlet_spawn``): the worker
carries ``__sqlalchemy_greenlet_provider__``, so SQLAlchemy's ``await_`` inside the operation
switches to the worker's parent (the greenlet running the calling coroutine) with the awaitable;
the caller awaits it and switches back with the result, or throws the exception in where the
operation waited. The worker runs in the caller's `contextvars.Context`, as a spawned one does.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import Any, Concatenate, ParamSpec, TypeVar

from greenlet import GreenletExit, getcurrent, greenlet
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

P = ParamSpec("P")
R = TypeVar("R")

#: Idle workers kept per thread: enough for the operations a service has in flight at once;
#: a worker beyond it ends when its operation does.
MAX_IDLE = 32


class _Done:
    """What a worker hands back when its operation has returned or raised."""

    __slots__ = ("ok", "value")

    def __init__(self, ok: bool, value: Any) -> None:
        self.ok = ok
        self.value = value


class _Worker(greenlet):
    """A greenlet that runs one operation after another, waiting in between."""

    __sqlalchemy_greenlet_provider__ = True

    def __init__(self) -> None:
        super().__init__(self._serve)

    def _serve(self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        while True:
            try:
                done = _Done(True, fn(*args, **kwargs))
            except GreenletExit:
                raise  # the worker is being discarded
            except BaseException as exc:  # handed to the caller, which raises it
                done = _Done(False, exc)
            # Drop the finished call's objects before waiting: an idle worker holds nothing.
            del fn, args, kwargs
            caller = self.parent
            assert caller is not None  # (set by run_sync before every switch in)
            fn, args, kwargs = caller.switch(done)


class _Idle(threading.local):
    """The idle workers of this thread (a greenlet only runs in the thread that made it)."""

    def __init__(self) -> None:
        self.workers: list[_Worker] = []


_idle = _Idle()


async def run_sync(
    aconn: AsyncConnection, fn: Callable[Concatenate[Connection, P], R], *args: P.args, **kwargs: P.kwargs
) -> R:
    """``await aconn.run_sync(fn, *args, **kwargs)``, in a reused greenlet."""
    conn = aconn.sync_connection
    if conn is None:  # not started: let SQLAlchemy raise its own error
        return await aconn.run_sync(fn, *args, **kwargs)
    workers = _idle.workers
    worker = workers.pop() if workers else _Worker()
    caller = getcurrent()
    worker.parent = caller
    worker.gr_context = caller.gr_context
    result = worker.switch(fn, (conn, *args), kwargs)
    while result.__class__ is not _Done:
        try:
            value = await result
        except BaseException:
            result = worker.throw(*sys.exc_info())
        else:
            result = worker.switch(value)
    # The idle worker's frame still holds this _Done, and had the caller's context: it must
    # keep neither the result (or the error, with its traceback) nor the context alive.
    ok, value = result.ok, result.value
    result.value = None
    worker.gr_context = None
    if len(workers) < MAX_IDLE:
        workers.append(worker)
    if ok:
        return value  # type: ignore[no-any-return]
    try:
        raise value
    finally:
        del value  # (the frame would otherwise hold the error and its traceback: a cycle)
