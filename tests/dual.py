"""One test body for both modes: ``await io(obj).save()`` calls ``save()`` or ``asave()``.

In async mode the ``a``-prefixed twin is awaited. In sync mode the sync method runs where a real
sync caller runs it: on a thread with no event loop (one worker thread per test, in a copy of
the test's context, as `asyncio.to_thread` does), and its result is handed back to the test.
A sync ``db.transaction()`` begins and ends on that thread too, and its pin is copied into the
test's context, so the calls inside the block run on the transaction's connection.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any, TypeVar

T = TypeVar("T")

_MISSING = object()


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
        if self._thread is None:
            self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sync-caller")
        call = functools.partial(context.run, fn, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self._thread, call)

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
        opened = model.transaction(**kwargs)
        context = contextvars.copy_context()
        tx = await self._in(context, opened.__enter__)
        # The pin was set in `context`: copy it into the test's context for the calls inside.
        before = contextvars.copy_context()
        tokens = [var.set(value) for var, value in context.items() if before.get(var, _MISSING) is not value]
        try:
            yield tx
        except BaseException as exc:
            for token in reversed(tokens):
                token.var.reset(token)
            if not await self._in(context, opened.__exit__, type(exc), exc, exc.__traceback__):
                raise
        else:
            for token in reversed(tokens):
                token.var.reset(token)
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
