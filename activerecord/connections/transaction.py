"""Transactions: the connection that holds one is pinned in a context variable.

Every statement for that connection name inside the block runs on the pinned connection, so the
pin is right in threads and in asyncio tasks alike. Nesting makes a savepoint; an exception rolls
back only its own level. ``on_commit`` callbacks run once the outermost transaction commits.

`transaction` is written once, as sync code; `atransaction` runs its begin and its end through
the greenlet bridge (``run_in_greenlet``), on the async engine's ``sync_engine``. A failed COMMIT
or ROLLBACK leaves nothing behind: the pin is reset and the connection is discarded, so the next
call on the same thread or task starts clean.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import AbstractAsyncContextManager, contextmanager, suppress
from contextvars import ContextVar, Token
from dataclasses import dataclass, field
from types import MappingProxyType, TracebackType
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.engine import RootTransaction
from sqlalchemy.ext.asyncio import AsyncConnection

from ..dialects import begin_write
from ..engine.greenlets import bridged, run_in_greenlet, wait
from ..errors import TransactionError
from .manager import ConnectionManager
from .outcome import commit_outcome

Callback = Callable[[], "Awaitable[None] | None"]


@dataclass
class Transaction:
    """One level of an open transaction, as handed out by ``with transaction() as tx``.

    ``connection`` is the SQLAlchemy connection that every statement for ``name`` uses inside
    the block: a `Connection` in a sync transaction, an `AsyncConnection` in an async one.
    """

    name: str
    connection: Any
    is_async: bool
    parent: Transaction | None = None
    #: True once the outermost transaction has committed (its ``on_commit`` callbacks run after).
    committed: bool = False
    _on_commit: list[Callback] = field(default_factory=list)
    _on_rollback: list[Callback] = field(default_factory=list)

    @property
    def sync_connection(self) -> Connection:
        """The sync `Connection` the statements run on (inside the greenlet bridge when async)."""
        conn: Connection = self.connection.sync_connection if self.is_async else self.connection
        return conn

    @property
    def depth(self) -> int:
        """0 for the outermost transaction, 1 for its first savepoint, and so on."""
        return 0 if self.parent is None else self.parent.depth + 1

    def on_commit(self, callback: Callback) -> None:
        """Run ``callback`` after the outermost transaction commits (dropped if this level rolls back).

        In async mode the callback may be a coroutine function; it is awaited.
        """
        self._on_commit.append(callback)

    def on_rollback(self, callback: Callback) -> None:
        """Run ``callback`` after this level rolls back."""
        self._on_rollback.append(callback)

    def _release_into_parent(self) -> None:
        assert self.parent is not None
        self.parent._on_commit.extend(self._on_commit)
        self.parent._on_rollback.extend(self._on_rollback)


# Never mutated: entering a transaction sets a new mapping, so tasks and threads cannot see each other's.
_current: ContextVar[Mapping[str, Transaction]] = ContextVar("activerecord_transactions", default=MappingProxyType({}))


def current(name: str) -> Transaction | None:
    """The innermost open transaction on connection ``name`` in this context, if any."""
    return _current.get().get(name)


def _enter(tx: Transaction) -> Token[Mapping[str, Transaction]]:
    return _current.set({**_current.get(), tx.name: tx})


def _run_callbacks(callbacks: list[Callback], is_async: bool) -> None:
    for callback in callbacks:
        result = callback()
        if inspect.isawaitable(result):
            if not is_async:
                raise TransactionError("an async callback was registered on a sync transaction")
            wait(result)


def _refused() -> str:
    return "Model.transaction() would block the running event loop; use `async with Model.atransaction()`"


def _discard(conn: Connection) -> None:
    """Throw away a connection whose COMMIT or ROLLBACK failed: it may still be inside the
    transaction (SQLite after a deferred foreign key failed at COMMIT), so it must not go back
    to the pool as it is."""
    with suppress(Exception):  # the original failure is what the caller must see
        conn.invalidate()


@contextmanager
def transaction(name: str = "default", isolation_level: str | None = None) -> Iterator[Transaction]:
    """A transaction on connection ``name``; nested calls make savepoints.

    Sync code uses it directly; inside the greenlet bridge (`atransaction`) it runs on the async
    engine and the transaction is an async one.
    """
    is_async = bridged(_refused)
    outer = current(name)
    if outer is not None:
        if outer.is_async != is_async:
            if outer.is_async:
                raise TransactionError(f"connection {name!r} is inside an async transaction: use atransaction() there")
            raise TransactionError(f"connection {name!r} is inside a sync transaction: use transaction() there")
        if isolation_level is not None:
            raise TransactionError("the isolation level can only be set on the outermost transaction")
        yield from _savepoint(Transaction(name, outer.connection, is_async, outer))
        return

    aengine = ConnectionManager.async_engine(name) if is_async else None
    conn = aengine.sync_engine.connect() if aengine is not None else ConnectionManager.engine(name).connect()
    try:
        if isolation_level is not None:
            conn.execution_options(isolation_level=isolation_level)
        root = begin_write(conn)
    except BaseException:
        conn.close()
        raise
    tx = Transaction(name, AsyncConnection(aengine, conn) if aengine is not None else conn, is_async)
    token = _enter(tx)
    try:
        yield tx
    except BaseException:
        _end(conn, root.rollback, token)
        _run_callbacks(tx._on_rollback, is_async)
        raise
    try:
        _end(conn, lambda: _commit(root), token)
    except BaseException:
        _run_callbacks(tx._on_rollback, is_async)
        raise
    tx.committed = True
    _run_callbacks(tx._on_commit, is_async)


def _commit(root: RootTransaction) -> None:
    with commit_outcome():
        root.commit()


def _end(conn: Connection, finish: Callable[[], None], token: Token[Mapping[str, Transaction]]) -> None:
    """COMMIT or ROLLBACK, then unpin and give the connection back, whatever happened."""
    try:
        finish()
    except BaseException:
        _discard(conn)
        raise
    finally:
        _current.reset(token)
        conn.close()


def _savepoint(tx: Transaction) -> Iterator[Transaction]:
    assert tx.parent is not None
    savepoint = tx.sync_connection.begin_nested()
    token = _enter(tx)
    try:
        yield tx
    except BaseException:
        try:
            savepoint.rollback()
        finally:
            _current.reset(token)
        _run_callbacks(tx._on_rollback, tx.is_async)
        raise
    try:
        savepoint.commit()
    finally:
        _current.reset(token)
    tx._release_into_parent()


class _AsyncTransaction(AbstractAsyncContextManager[Transaction]):
    """`transaction`'s begin and end, each run through the greenlet bridge."""

    __slots__ = ("_sync",)

    def __init__(self, name: str, isolation_level: str | None) -> None:
        self._sync = transaction(name, isolation_level)

    async def __aenter__(self) -> Transaction:
        return await run_in_greenlet(self._sync.__enter__)

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        return await run_in_greenlet(self._sync.__exit__, kind, exc, tb)


def atransaction(name: str = "default", isolation_level: str | None = None) -> AbstractAsyncContextManager[Transaction]:
    """The async twin of `transaction`, for ``async with``."""
    return _AsyncTransaction(name, isolation_level)
