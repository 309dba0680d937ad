"""One test body for both modes: ``await io(obj).save()`` calls ``save()`` or ``asave()``.

In async mode the ``a``-prefixed twin is awaited. In sync mode the sync method runs where a real
sync caller runs it: on a thread with no event loop (one worker thread per test, in a copy of
the test's context, as `asyncio.to_thread` does), and its result is handed back to the test.
The context variables a call changes are changed in the test's context afterwards, so a sync
test body behaves as one sync caller: a write position recorded by one call is seen by the next,
and a ``db.transaction()`` begun on that thread pins its connection for the calls inside.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any, TypeVar

T = TypeVar("T")

_MISSING = object()


def off_loop(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run sync set-up code on a thread with no event loop, in a copy of this context, and wait.

    It blocks the caller: for fixtures and helpers that prepare databases, not for the code under
    test (that goes through `IO`).
    """
    context = contextvars.copy_context()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="set-up") as pool:
        return pool.submit(context.run, fn, *args, **kwargs).result()


def _default(var: contextvars.ContextVar[Any]) -> Any:
    """The value ``var`` has where it was never set (its default), or `_MISSING`."""
    try:
        return contextvars.Context().run(var.get)
    except LookupError:
        return _MISSING


class IO:
    """Calls the sync or the async form of activerecord's I/O methods."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.is_async = mode == "async"
        self._thread: ThreadPoolExecutor | None = None

    def __repr__(self) -> str:
        return f"IO({self.mode})"

    def __call__(self, target: Any) -> _Bound:
        return _Bound(target, self)

    def close(self) -> None:
        """Stop the sync caller's thread."""
        if self._thread is not None:
            self._thread.shutdown(wait=True)
            self._thread = None

    async def _in(self, context: contextvars.Context, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn`` on the sync caller's thread in ``context``; the context variables it changes
        (a write position, a transaction's pin) are then changed in the test's context too, as
        if the test had made the call itself, like a sync caller does."""
        if self._thread is None:
            self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sync-caller")
        changes: dict[contextvars.ContextVar[Any], Any] = {}

        def call() -> T:
            before = dict(context.items())
            try:
                return context.run(fn, *args, **kwargs)
            finally:
                after = dict(context.items())
                changes.update((var, value) for var, value in after.items() if before.get(var, _MISSING) is not value)
                changes.update((var, _default(var)) for var in before.keys() - after.keys())

        try:
            return await asyncio.get_running_loop().run_in_executor(self._thread, call)
        finally:
            for var, value in changes.items():
                if value is not _MISSING:
                    var.set(value)

    async def blocking(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)`` run as sync code runs: on the sync caller's thread, off the loop."""
        return await self._in(contextvars.copy_context(), fn, *args, **kwargs)

    @asynccontextmanager
    async def transaction(self, model: Any = None, **kwargs: Any) -> AsyncIterator[Any]:
        """``with model.transaction()`` or ``async with model.atransaction()``."""
        if model is None:
            from activerecord import ActiveRecord

            model = ActiveRecord
        if self.is_async:
            async with model.atransaction(**kwargs) as tx:
                yield tx
            return
        # Begun and ended in one context (its pin's token belongs to it); `_in` carries the pin
        # into the test's context for the calls inside, and takes it away at the end.
        opened = model.transaction(**kwargs)
        context = contextvars.copy_context()
        tx = await self._in(context, opened.__enter__)
        try:
            yield tx
        except BaseException as exc:
            if not await self._in(context, opened.__exit__, type(exc), exc, exc.__traceback__):
                raise
        else:
            await self._in(context, opened.__exit__, None, None, None)

    async def iterate(self, query: Any) -> list[Any]:
        """Every record from iterating ``query`` (``for`` or ``async for``)."""
        if self.is_async:
            return [r async for r in query]
        return await self.blocking(list, query)

    async def batches(self, query: Any, size: int) -> list[list[Any]]:
        """The batches of ``query.batches(size)`` or ``query.abatches(size)``."""
        if self.is_async:
            return [b async for b in query.abatches(size)]
        return await self.blocking(lambda: list(query.batches(size)))


class _Bound:
    __slots__ = ("_io", "_target")

    def __init__(self, target: Any, io: IO) -> None:
        self._target = target
        self._io = io

    def __getattr__(self, name: str) -> Callable[..., Any]:
        if self._io.is_async:
            return getattr(self._target, "a" + name)  # type: ignore[no-any-return]
        method = getattr(self._target, name)

        async def call(*args: Any, **kwargs: Any) -> Any:
            return await self._io.blocking(method, *args, **kwargs)

        return call
