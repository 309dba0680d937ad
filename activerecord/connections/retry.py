"""Transactions that run again after a retryable error (serialization failure, deadlock, lock
timeout, a connection lost before COMMIT was sent): `RetryPolicy` and the blocks that use it.

The waiting, the cap on attempts and on total time, and the jitter are tenacity's; this module
decides what is retried (`activerecord.errors.is_retryable`) and re-runs the whole transaction
body, never a single statement: the database rolled back the whole attempt. A body must therefore
do nothing outside the database that it cannot do twice.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable, Coroutine
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

import tenacity

from ..errors import TransactionError, is_retryable
from . import transaction as _transaction

P = ParamSpec("P")
R = TypeVar("R")


@dataclass(frozen=True)
class RetryAttempt:
    """What the ``on_retry`` hook of a `RetryPolicy` is told before each wait."""

    #: The attempt that failed, from 1.
    attempt: int
    #: Its error (retryable, or it would have been raised).
    error: BaseException
    #: Seconds until the next attempt.
    delay: float
    #: Seconds since the first attempt began.
    elapsed: float


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a transaction is run again.

    Waits grow exponentially from ``initial_delay`` up to ``max_delay``, each a random fraction of
    that bound ("full jitter", so that clients that collided do not collide again in step). At most
    ``attempts`` runs in all, and no new attempt starts after ``deadline`` seconds.

    >>> RetryPolicy(attempts=3, initial_delay=0.01)
    RetryPolicy(attempts=3, initial_delay=0.01, max_delay=2.0, deadline=30.0, on_retry=None)
    """

    attempts: int = 5
    initial_delay: float = 0.05
    max_delay: float = 2.0
    deadline: float | None = 30.0
    #: Called before each wait (for logging or metrics); must not raise.
    on_retry: Callable[[RetryAttempt], None] | None = None

    def __post_init__(self) -> None:
        if isinstance(self.attempts, bool) or not isinstance(self.attempts, int) or self.attempts < 1:
            raise TransactionError(f"retry attempts must be a whole number of at least 1, not {self.attempts!r}")
        for name in ("initial_delay", "max_delay"):
            if getattr(self, name) < 0:
                raise TransactionError(f"retry {name} must not be negative")
        if self.deadline is not None and self.deadline <= 0:
            raise TransactionError("a retry deadline must be positive (or None for none)")

    @classmethod
    def of(cls, retry: int | RetryPolicy) -> RetryPolicy:
        """``retry=5`` means five attempts with the default waits; a policy stands as it is."""
        return retry if isinstance(retry, RetryPolicy) else cls(attempts=retry)

    def _tenacity(self, retryable: Callable[[BaseException], bool]) -> dict[str, Any]:
        stop: Any = tenacity.stop_after_attempt(self.attempts)
        if self.deadline is not None:
            stop = stop | tenacity.stop_before_delay(self.deadline)
        return {
            "stop": stop,
            "wait": tenacity.wait_random_exponential(multiplier=self.initial_delay, max=self.max_delay),
            "retry": tenacity.retry_if_exception(retryable),
            "before_sleep": self._before_sleep if self.on_retry is not None else None,
            "reraise": True,
        }

    def _before_sleep(self, state: tenacity.RetryCallState) -> None:
        assert self.on_retry is not None and state.outcome is not None
        error = state.outcome.exception()
        assert error is not None
        delay = state.next_action.sleep if state.next_action is not None else 0.0
        self.on_retry(RetryAttempt(state.attempt_number, error, delay, time.monotonic() - state.start_time))


class _Attempts:
    """The transactions of one retrying run. An error raised after the latest one committed (by an
    ``on_commit`` callback, say) is never retried: running the body again would do it twice."""

    __slots__ = ("last",)

    def __init__(self) -> None:
        self.last: _transaction.Transaction | None = None

    def retryable(self, exc: BaseException) -> bool:
        return is_retryable(exc) and not (self.last is not None and self.last.committed)


def run(
    policy: RetryPolicy, name: str, isolation_level: str | None, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs
) -> R:
    """``fn(*args, **kwargs)`` inside a transaction on ``name``, the whole of it run again while
    the error is retryable and ``policy`` allows."""
    if _transaction.current(name) is not None:
        # A savepoint cannot be retried on its own: the outer transaction is what failed.
        raise TransactionError("a retrying transaction cannot be nested in another transaction")
    attempts = _Attempts()
    for attempt in tenacity.Retrying(**policy._tenacity(attempts.retryable)):
        with attempt, _transaction.transaction(name, isolation_level) as tx:
            attempts.last = tx
            return fn(*args, **kwargs)
    raise AssertionError("unreachable: tenacity reraises the last error")  # pragma: no cover


async def arun(
    policy: RetryPolicy,
    name: str,
    isolation_level: str | None,
    fn: Callable[P, Awaitable[R]],
    *args: P.args,
    **kwargs: P.kwargs,
) -> R:
    """The async twin of `run`: ``fn`` is a coroutine function."""
    if _transaction.current(name) is not None:
        raise TransactionError("a retrying transaction cannot be nested in another transaction")
    attempts = _Attempts()
    async for attempt in tenacity.AsyncRetrying(**policy._tenacity(attempts.retryable)):
        with attempt:
            async with _transaction.atransaction(name, isolation_level) as tx:
                attempts.last = tx
                return await fn(*args, **kwargs)
    raise AssertionError("unreachable: tenacity reraises the last error")  # pragma: no cover


_WITH_RETRY = (
    "a with block cannot run its body again: decorate a function with transaction(retry=...) "
    "or pass the body to run_in_transaction(fn, retry=...)"
)


class TransactionBlock(AbstractContextManager[_transaction.Transaction]):
    """What ``Model.transaction()`` returns: a ``with`` block, or a decorator (``@Model.transaction()``)
    that runs the decorated function in a transaction, again on retryable errors with ``retry=``.
    """

    def __init__(self, name: str, isolation_level: str | None, retry: int | RetryPolicy | None) -> None:
        self._name = name
        self._isolation_level = isolation_level
        self._policy = RetryPolicy.of(retry) if retry is not None else None
        self._blocks: list[AbstractContextManager[_transaction.Transaction]] = []

    def __enter__(self) -> _transaction.Transaction:
        if self._policy is not None:
            raise TransactionError(_WITH_RETRY)
        block = _transaction.transaction(self._name, self._isolation_level)
        self._blocks.append(block)
        return block.__enter__()

    def __exit__(self, *exc_info: Any) -> bool | None:
        return self._blocks.pop().__exit__(*exc_info)

    def __call__(self, fn: Callable[P, R]) -> Callable[P, R]:
        policy = self._policy or RetryPolicy(attempts=1)

        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            return run(policy, self._name, self._isolation_level, fn, *args, **kwargs)

        return wrapper


class AsyncTransactionBlock(AbstractAsyncContextManager[_transaction.Transaction]):
    """What ``Model.atransaction()`` returns: an ``async with`` block, or a decorator of coroutine
    functions, run again on retryable errors with ``retry=``."""

    def __init__(self, name: str, isolation_level: str | None, retry: int | RetryPolicy | None) -> None:
        self._name = name
        self._isolation_level = isolation_level
        self._policy = RetryPolicy.of(retry) if retry is not None else None
        self._blocks: list[AbstractAsyncContextManager[_transaction.Transaction]] = []

    async def __aenter__(self) -> _transaction.Transaction:
        if self._policy is not None:
            raise TransactionError(_WITH_RETRY)
        block = _transaction.atransaction(self._name, self._isolation_level)
        self._blocks.append(block)
        return await block.__aenter__()

    async def __aexit__(self, *exc_info: Any) -> bool | None:
        return await self._blocks.pop().__aexit__(*exc_info)

    def __call__(self, fn: Callable[P, Awaitable[R]]) -> Callable[P, Coroutine[Any, Any, R]]:
        policy = self._policy or RetryPolicy(attempts=1)

        @functools.wraps(fn)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            return await arun(policy, self._name, self._isolation_level, fn, *args, **kwargs)

        return wrapper
