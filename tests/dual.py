"""One test body for both modes: ``await io(obj).save()`` calls ``save()`` or ``asave()``.

In sync mode the sync method runs (blocking, as a sync caller would) and its result is handed
back through a coroutine; in async mode the ``a``-prefixed twin is awaited.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any


class IO:
    """Calls the sync or the async form of activerecord's I/O methods."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.is_async = mode == "async"

    def __repr__(self) -> str:
        return f"IO({self.mode})"

    def __call__(self, target: Any) -> _Bound:
        return _Bound(target, self.is_async)

    @asynccontextmanager
    async def transaction(self, model: Any = None, **kwargs: Any) -> AsyncIterator[Any]:
        """``with model.transaction()`` or ``async with model.atransaction()``."""
        if model is None:
            from activerecord import ActiveRecord

            model = ActiveRecord
        if self.is_async:
            async with model.atransaction(**kwargs) as tx:
                yield tx
        else:
            with model.transaction(**kwargs) as tx:
                yield tx

    async def iterate(self, query: Any) -> list[Any]:
        """Every record from iterating ``query`` (``for`` or ``async for``)."""
        if self.is_async:
            return [r async for r in query]
        return list(query)

    async def batches(self, query: Any, size: int) -> list[list[Any]]:
        """The batches of ``query.batches(size)`` or ``query.abatches(size)``."""
        if self.is_async:
            return [b async for b in query.abatches(size)]
        return list(query.batches(size))


class _Bound:
    __slots__ = ("_async", "_target")

    def __init__(self, target: Any, is_async: bool) -> None:
        self._target = target
        self._async = is_async

    def __getattr__(self, name: str) -> Callable[..., Any]:
        if self._async:
            return getattr(self._target, "a" + name)  # type: ignore[no-any-return]
        method = getattr(self._target, name)

        async def call(*args: Any, **kwargs: Any) -> Any:
            return method(*args, **kwargs)

        return call
