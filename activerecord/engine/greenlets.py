"""Sync code run from async code: SQLAlchemy's greenlet bridge, with the greenlets reused.

Every orchestration (an operation, a transaction's begin and end, a save with its hooks, a
migration) is written once as sync code. An async caller runs it with
``await run_in_greenlet(fn, *args)``: inside, SQLAlchemy's ``await_`` (which the async drivers'
adapters call for every network wait) switches out to the calling coroutine, which awaits and
switches back. One greenlet hop per orchestration, not one per statement.

`AsyncConnection.run_sync` starts a new greenlet for every call. The first Python frame a new
greenlet runs makes CPython map a fresh frame-stack chunk (a 16 KiB ``mmap``, unmapped again
when the greenlet ends, its pages faulted in anew each time): about 8 µs per call, and about
20 µs per statement that waits on the server, measured on PostgreSQL with asyncpg. Here a
worker greenlet that has finished its call waits, with its chunk, for the next one.

The protocol is SQLAlchemy's own (``sqlalchemy.util.concurrency.greenlet_spawn``): the worker
carries ``__sqlalchemy_greenlet_provider__``, so ``await_`` switches to the worker's parent (the
greenlet running the calling coroutine) with the awaitable; the caller awaits it and switches
back with the result, or throws the exception in where the code waited. The worker runs in the
caller's `contextvars.Context`, as a spawned one does, so context variables set inside (a
transaction's pin) are seen by the caller afterwards. An import-time self-check falls back to
SQLAlchemy's public `greenlet_spawn`, with a warning, should that protocol ever change.

`bridged` is the one cheap check every sync entry point makes: it tells the bridge (async
caller) from plain sync code, and refuses sync code on a thread whose event loop is running.
"""

from __future__ import annotations

import functools
import os
import sys
import threading
import warnings
from asyncio import _get_running_loop
from collections.abc import Awaitable, Callable, Coroutine, Generator, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, ParamSpec, TypeVar

from greenlet import GreenletExit, getcurrent, greenlet
from sqlalchemy.util import await_, greenlet_spawn

from ..dialects.deadlines import bounded
from ..errors import SyncInAsyncError

P = ParamSpec("P")
R = TypeVar("R")

#: Idle workers kept per thread: enough for the calls a service has in flight at once;
#: a worker beyond it ends when its call does.
MAX_IDLE = 32

#: Set to ``1`` to let sync I/O run on a thread whose event loop is running (notebooks, REPLs).
ALLOW_ENV = "ACTIVERECORD_ALLOW_SYNC_IN_LOOP"

_allowed: ContextVar[bool] = ContextVar("activerecord_allow_sync_in_loop", default=False)


class _Done:
    """What a worker hands back when its call has returned or raised."""

    __slots__ = ("ok", "value")

    def __init__(self, ok: bool, value: Any) -> None:
        self.ok = ok
        self.value = value


class _Worker(greenlet):
    """A greenlet that runs one call after another, waiting in between."""

    __sqlalchemy_greenlet_provider__ = True
    #: Its calls may return without having awaited anything (see `dialects.sqlite_async`, whose
    #: quick statements are waited for in place): SQLAlchemy's own greenlet_spawn refuses that.
    activerecord_awaits_optional = True

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
            assert caller is not None  # (set by _reused before every switch in)
            fn, args, kwargs = caller.switch(done)


class _Idle(threading.local):
    """The idle workers of this thread (a greenlet only runs in the thread that made it)."""

    def __init__(self) -> None:
        self.workers: list[_Worker] = []


_idle = _Idle()


async def _reused(fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """``await greenlet_spawn(fn, *args, **kwargs)``, in a reused greenlet."""
    workers = _idle.workers
    worker = workers.pop() if workers else _Worker()
    caller = getcurrent()
    worker.parent = caller
    worker.gr_context = caller.gr_context
    result = worker.switch(fn, args, kwargs)
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


async def _spawned(fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """The public path: a new greenlet per call, through SQLAlchemy's `greenlet_spawn`."""
    return await greenlet_spawn(functools.partial(fn, *args, **kwargs))


class _Probe:
    """An awaitable that is never awaited: the self-check only looks at where it is handed."""

    def __await__(self) -> Generator[Any, None, Any]:
        yield from ()


def _self_check() -> bool:
    """True when SQLAlchemy's ``await_`` hands an awaitable out of a reused worker, and the reply
    back in, as `_reused` expects (run without an event loop: the switches are all it needs)."""
    try:
        probe = _Probe()
        worker = _Worker()
        worker.parent = getcurrent()
        handed = worker.switch(lambda: await_(probe), (), {})
        if handed is not probe:
            return False
        done = worker.switch("reply")
        if not (isinstance(done, _Done) and done.ok and done.value == "reply"):
            return False
        return not worker.dead and hasattr(worker, "gr_context")
    except Exception:
        return False


def _choose() -> Callable[..., Coroutine[Any, Any, Any]]:
    if _self_check():
        return _reused
    warnings.warn(
        "activerecord: SQLAlchemy's greenlet protocol is not the one the reused-greenlet bridge "
        "was written for; falling back to sqlalchemy.util.greenlet_spawn (slower, same results)",
        RuntimeWarning,
        stacklevel=2,
    )
    return _spawned


_run = _choose()


async def run_in_greenlet(fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """Run the sync ``fn(*args, **kwargs)`` from async code: its I/O on async drivers is awaited.

    The async twin of every orchestration is this one call around the sync form.
    """
    return await _run(fn, *args, **kwargs)  # type: ignore[no-any-return]


def wait(awaitable: Awaitable[R], timeout: float | None = None) -> R:
    """Await ``awaitable`` from sync code running inside `run_in_greenlet` (an async hook or callback).

    With ``timeout``, past that many seconds the awaitable is cancelled and `TimeoutError` raised.
    """
    # The loop's deadline table, not wait_for: on Python 3.11 wait_for drops a cancellation of
    # the calling task that arrives as the awaitable completes, and the cancelled task would go on.
    return await_(awaitable if timeout is None else bounded(awaitable, timeout, TimeoutError))


@contextmanager
def allow_sync_in_event_loop() -> Iterator[None]:
    """Let sync I/O methods run on this thread although its event loop is running.

    For notebooks and REPLs, whose cells run inside an event loop: a sync call there blocks the
    loop, which a notebook does not mind. Setting the environment variable
    ``ACTIVERECORD_ALLOW_SYNC_IN_LOOP=1`` does the same for the whole process.
    """
    token = _allowed.set(True)
    try:
        yield
    finally:
        _allowed.reset(token)


def bridged(what: Callable[[], str] | None = None) -> bool:
    """True inside `run_in_greenlet` (an async caller), False in plain sync code.

    Sync code on a thread whose event loop is running would block that loop: that raises
    `SyncInAsyncError` (before any I/O) unless `allow_sync_in_event_loop` is in effect.
    ``what`` describes the refused call for the message; by default it is read off the stack.
    """
    if _get_running_loop() is None:
        return False
    if getattr(getcurrent(), "__sqlalchemy_greenlet_provider__", False):
        return True
    if _allowed.get() or os.environ.get(ALLOW_ENV, "") not in ("", "0"):
        return False
    raise SyncInAsyncError(what() if what is not None else _describe(sys._getframe(1)))


_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


def _describe(frame: Any) -> str:
    """The refusal's message, naming the public method the user called and its async twin."""
    called: Any = None
    while frame is not None:
        if frame.f_code.co_filename.startswith(_PACKAGE):
            if not frame.f_code.co_name.startswith("_"):
                called = frame
        elif called is not None:
            break
        frame = frame.f_back
    if called is None:
        return "a sync I/O call would block the running event loop; use its a-prefixed async twin with `await`"
    name = called.f_code.co_name
    target = called.f_locals.get("self", called.f_locals.get("cls"))
    if target is None:
        owner = shown = ""
        has_twin = "a" + name in called.f_globals
    elif isinstance(target, type):
        owner = shown = target.__name__ + "."
        has_twin = hasattr(target, "a" + name)
    else:
        owner = type(target).__name__ + "."
        shown = owner[:1].lower() + owner[1:]
        has_twin = hasattr(target, "a" + name)
    if not has_twin:
        return (
            f"{owner}{name}() would block the running event loop and has no async twin: "
            "run it in a worker thread (`await asyncio.to_thread(...)`)"
        )
    return f"{owner}{name}() would block the running event loop; use `await {shown}a{name}()`"
