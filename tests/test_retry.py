"""Errors a caller can act on, and transactions that run again after a retryable one.

Real faults on real servers: a refused connection, a missing database, a unique violation, write
skew under SERIALIZABLE and deadlocks between two concurrent transactions (threads in sync mode,
tasks in async mode). After every fault the next call on the same thread or task must work.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from activerecord import ActiveRecord, ConnectionManager, RetryAttempt, RetryPolicy
from activerecord.errors import CommitOutcomeUnknown, Retry, TransactionError, is_retryable, retry_class

from .backends import BackendDatabases
from .dual import IO
from .harness.proxy import Proxy
from .models import Author

servers = pytest.mark.backends("postgresql", "mysql")


@pytest.fixture
def unreachable(db: IO, backend_dbs: BackendDatabases) -> Iterator[Callable[..., str]]:
    """Configures connections whose server refuses or whose database is missing."""
    made: list[str] = []

    def configure(name: str, **changes: Any) -> str:
        ConnectionManager.configure({name: {**backend_dbs.config("default"), **changes}})
        made.append(name)
        return name

    yield configure
    for name in made:
        ConnectionManager.remove(name)


def _chain(exc: BaseException) -> list[BaseException]:
    found = []
    cause: BaseException | None = exc
    while cause is not None:
        found.append(cause)
        cause = cause.__cause__
    return found


@servers
async def test_a_refused_connection_is_an_operational_error_in_both_modes(
    db: IO, unreachable: Callable[..., str]
) -> None:
    name = unreachable("refused", port=1)
    with pytest.raises(sa.exc.OperationalError) as caught:
        await db(ActiveRecord).execute_raw("SELECT 1", using=name)
    assert is_retryable(caught.value)
    assert any(isinstance(e, ConnectionRefusedError) or "refused" in str(e).lower() for e in _chain(caught.value))
    assert await db(Author.find()).count() == 0  # the default connection still works


@servers
async def test_a_missing_database_is_an_operational_error_that_is_not_retried(
    db: IO, unreachable: Callable[..., str]
) -> None:
    name = unreachable("missing", database="ar_no_such_database")
    with pytest.raises(sa.exc.OperationalError) as caught:
        await db(ActiveRecord).execute_raw("SELECT 1", using=name)
    assert retry_class(caught.value) is Retry.PERMANENT
    assert len(_chain(caught.value)) >= 2  # the driver's error is chained


async def test_a_constraint_violation_is_permanent(db: IO) -> None:
    await db(Author).create(name="a", email="same@example.com")
    with pytest.raises(sa.exc.IntegrityError) as caught:
        await db(Author).create(name="b", email="same@example.com")
    assert retry_class(caught.value) is Retry.PERMANENT
    assert await db(Author.find()).count() == 1


def test_retry_policy_refuses_nonsense() -> None:
    for bad in (0, -1, True, 2.5):
        with pytest.raises(TransactionError):
            RetryPolicy(attempts=bad)  # type: ignore[arg-type]
    with pytest.raises(TransactionError):
        RetryPolicy(deadline=0)


async def test_a_with_block_cannot_retry(db: IO) -> None:
    with pytest.raises(TransactionError, match="cannot run its body again"):
        async with db.transaction(Author, retry=3):
            pass
    assert await db(Author.find()).count() == 0


class Pair:
    """Runs two transaction bodies at once (threads in sync mode, tasks in async mode), each
    pausing at a shared barrier on its first attempt only, so the two collide exactly once."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.thread_barrier = threading.Barrier(2, timeout=20)
        self.task_barrier = asyncio.Barrier(2) if mode == "async" else None
        self.first = {0: True, 1: True}

    def meet(self, who: int) -> None:
        if self.first[who]:
            self.first[who] = False
            self.thread_barrier.wait()

    async def ameet(self, who: int) -> None:
        if self.first[who]:
            self.first[who] = False
            assert self.task_barrier is not None
            await asyncio.wait_for(self.task_barrier.wait(), 20)

    async def run(
        self, sync_body: Callable[[int], Any], async_body: Callable[[int], Awaitable[Any]]
    ) -> list[BaseException | None]:
        """Both bodies to the end; each one's error or None."""
        if self.mode == "async":
            results = await asyncio.gather(async_body(0), async_body(1), return_exceptions=True)
        else:
            results = await asyncio.gather(
                asyncio.to_thread(_capture, sync_body, 0), asyncio.to_thread(_capture, sync_body, 1)
            )
        return [r if isinstance(r, BaseException) else None for r in results]


def _capture(fn: Callable[[int], Any], who: int) -> BaseException | None:
    try:
        fn(who)
    except BaseException as exc:
        return exc
    return None


async def _doctors(db: IO) -> list[Author]:
    await db(Author).create(name="alice", active=True)
    await db(Author).create(name="bob", active=True)
    return await db(Author.find().order_by(Author.name)).all()


def _skew_bodies(pair: Pair, ids: list[int], retry: RetryPolicy | None) -> tuple[Any, Any]:
    """Each doctor goes off call if someone else is still on call: write skew when both read first."""

    def body(who: int) -> None:
        on_call = Author.find().where(Author.active == True).count()  # noqa: E712
        pair.meet(who)
        if on_call >= 2:
            Author.find().where(Author.id == ids[who]).update_all(active=False)

    async def abody(who: int) -> None:
        on_call = await Author.find().where(Author.active == True).acount()  # noqa: E712
        await pair.ameet(who)
        if on_call >= 2:
            await Author.find().where(Author.id == ids[who]).aupdate_all(active=False)

    if retry is None:

        def plain(who: int) -> None:
            with Author.transaction(isolation_level="SERIALIZABLE"):
                body(who)

        async def aplain(who: int) -> None:
            async with Author.atransaction(isolation_level="SERIALIZABLE"):
                await abody(who)

        return plain, aplain
    return (
        Author.transaction(isolation_level="SERIALIZABLE", retry=retry)(body),
        Author.atransaction(isolation_level="SERIALIZABLE", retry=retry)(abody),
    )


@servers
async def test_write_skew_fails_one_transaction_with_a_retryable_error(db: IO, mode: str) -> None:
    ids = [a.id for a in await _doctors(db)]
    pair = Pair(mode)
    errors = await pair.run(*_skew_bodies(pair, ids, None))
    failed = [e for e in errors if e is not None]
    assert len(failed) == 1, errors
    assert isinstance(failed[0], sa.exc.OperationalError)  # the same class in both modes
    assert retry_class(failed[0]) is Retry.RETRYABLE
    assert await db(Author.find().where(active=True)).count() == 1


@servers
async def test_a_retrying_transaction_rides_through_write_skew(db: IO, mode: str) -> None:
    ids = [a.id for a in await _doctors(db)]
    pair = Pair(mode)
    retried: list[RetryAttempt] = []
    policy = RetryPolicy(attempts=5, initial_delay=0.01, max_delay=0.05, on_retry=retried.append)
    errors = await pair.run(*_skew_bodies(pair, ids, policy))
    assert errors == [None, None]
    assert len(retried) >= 1 and all(is_retryable(r.error) for r in retried)
    assert await db(Author.find().where(active=True)).count() == 1  # the invariant held


def _deadlock_bodies(pair: Pair, ids: list[int], retry: RetryPolicy) -> tuple[Any, Any]:
    """Two transactions take the same two rows in opposite order."""

    def bump(author_id: int) -> None:
        author = Author.find().where(Author.id == author_id).for_update().one()
        author.update(age=author.age + 1)

    async def abump(author_id: int) -> None:
        author = await Author.find().where(Author.id == author_id).for_update().aone()
        await author.aupdate(age=author.age + 1)

    def body(who: int) -> None:
        first, second = (ids[0], ids[1]) if who == 0 else (ids[1], ids[0])
        bump(first)
        pair.meet(who)
        bump(second)

    async def abody(who: int) -> None:
        first, second = (ids[0], ids[1]) if who == 0 else (ids[1], ids[0])
        await abump(first)
        await pair.ameet(who)
        await abump(second)

    return Author.transaction(retry=retry)(body), Author.atransaction(retry=retry)(abody)


@servers
async def test_a_retrying_transaction_rides_through_a_deadlock(db: IO, mode: str) -> None:
    for name in ("a", "b"):
        await db(Author).create(name=name, age=0)
    ids = [a.id for a in await db(Author.find().order_by(Author.name)).all()]
    pair = Pair(mode)
    retried: list[RetryAttempt] = []
    policy = RetryPolicy(attempts=5, initial_delay=0.01, max_delay=0.05, on_retry=retried.append)
    errors = await pair.run(*_deadlock_bodies(pair, ids, policy))
    assert errors == [None, None]
    assert [type(r.error) for r in retried] == [sa.exc.OperationalError]  # one deadlock victim, once
    assert [a.age for a in await db(Author.find().order_by(Author.name)).all()] == [2, 2]


async def test_run_in_transaction_returns_the_body_result(db: IO) -> None:
    if db.is_async:

        async def abody() -> str:
            return (await Author.acreate(name="x")).name

        assert await Author.arun_in_transaction(abody, retry=2) == "x"
    else:
        assert await asyncio.to_thread(Author.run_in_transaction, lambda: Author.create(name="x").name) == "x"
    assert await db(Author.find()).count() == 1


async def test_a_permanent_error_is_not_retried(db: IO) -> None:
    calls: list[int] = []

    def body() -> None:
        calls.append(1)
        raise ValueError("bad input")

    async def abody() -> None:
        body()

    with pytest.raises(ValueError):
        if db.is_async:
            await Author.arun_in_transaction(abody, retry=5)
        else:
            await asyncio.to_thread(Author.run_in_transaction, body, retry=5)
    assert calls == [1]


@servers
async def test_a_commit_whose_reply_is_cut_has_an_unknown_outcome(
    db: IO, mode: str, unreachable: Callable[..., str], backend_dbs: BackendDatabases
) -> None:
    config = backend_dbs.config("default")
    with Proxy(config["port"]) as proxy:
        name = unreachable("proxied", port=proxy.port)
        proxy.drop_reply_to(b"COMMIT")

        def body() -> None:
            Author(name="maybe").save(using=name)

        async def abody() -> None:
            await Author(name="maybe").asave(using=name)

        with pytest.raises(CommitOutcomeUnknown) as caught:
            if mode == "async":
                await ActiveRecord.arun_in_transaction(abody, using=name, retry=5)
            else:
                await asyncio.to_thread(ActiveRecord.run_in_transaction, body, using=name, retry=5)
        assert proxy.dropped.is_set()
        assert retry_class(caught.value) is Retry.UNKNOWN_OUTCOME
        assert isinstance(caught.value.__cause__, sa.exc.DBAPIError)
        # Not retried (one row at most), and here the server did commit it:
        assert await db(Author.find()).count() == 1
        proxy.passthrough()
        await db(ActiveRecord).execute_raw("SELECT 1", using=name)  # the next call works
