"""Transactions: the connection that holds one is pinned in a context variable.

Every statement for that connection name inside the block runs on the pinned connection, so the
pin is right in threads and in asyncio tasks alike. Nesting makes a savepoint; an exception rolls
back only its own level. ``on_commit`` callbacks run once the outermost transaction commits.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from ..dialects import abegin_write, begin_write
from ..errors import TransactionError
from .manager import ConnectionManager
from .outcome import commit_outcome

Callback = Callable[[], "Awaitable[None] | None"]


@dataclass
class Transaction:
    """One level of an open transaction, as handed out by ``with transaction() as tx``.

    ``connection`` is the SQLAlchemy connection (sync `Connection` or `AsyncConnection`) that
    every statement for ``name`` uses inside the block.
    """

    name: str
    connection: Any
    is_async: bool
    parent: Transaction | None = None
    _on_commit: list[Callback] = field(default_factory=list)
    _on_rollback: list[Callback] = field(default_factory=list)

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


def _enter(tx: Transaction) -> Any:
    return _current.set({**_current.get(), tx.name: tx})


def _run_sync(callbacks: list[Callback]) -> None:
    for callback in callbacks:
        result = callback()
        if inspect.isawaitable(result):
            raise TransactionError("an async callback was registered on a sync transaction")


async def _run_async(callbacks: list[Callback]) -> None:
    for callback in callbacks:
        result = callback()
        if inspect.isawaitable(result):
            await result


@contextmanager
def transaction(name: str = "default", isolation_level: str | None = None) -> Iterator[Transaction]:
    """A sync transaction on connection ``name``; nested calls make savepoints."""
    outer = current(name)
    if outer is not None:
        if outer.is_async:
            raise TransactionError(f"connection {name!r} is inside an async transaction: use atransaction() there")
        if isolation_level is not None:
            raise TransactionError("the isolation level can only be set on the outermost transaction")
        tx = Transaction(name, outer.connection, False, outer)
        savepoint = outer.connection.begin_nested()
        token = _enter(tx)
        try:
            yield tx
        except BaseException:
            savepoint.rollback()
            _current.reset(token)
            _run_sync(tx._on_rollback)
            raise
        savepoint.commit()
        _current.reset(token)
        tx._release_into_parent()
        return

    conn: Connection = ConnectionManager.engine(name).connect()
    try:
        if isolation_level is not None:
            conn.execution_options(isolation_level=isolation_level)
        root = begin_write(conn)
        tx = Transaction(name, conn, False)
        token = _enter(tx)
        try:
            yield tx
        except BaseException:
            root.rollback()
            _current.reset(token)
            _run_sync(tx._on_rollback)
            raise
        try:
            with commit_outcome():
                root.commit()
        finally:
            _current.reset(token)
    finally:
        conn.close()
    _run_sync(tx._on_commit)


@asynccontextmanager
async def atransaction(name: str = "default", isolation_level: str | None = None) -> AsyncIterator[Transaction]:
    """The async twin of `transaction`, for ``async with``."""
    outer = current(name)
    if outer is not None:
        if not outer.is_async:
            raise TransactionError(f"connection {name!r} is inside a sync transaction: use transaction() there")
        if isolation_level is not None:
            raise TransactionError("the isolation level can only be set on the outermost transaction")
        tx = Transaction(name, outer.connection, True, outer)
        savepoint = await outer.connection.begin_nested()
        token = _enter(tx)
        try:
            yield tx
        except BaseException:
            await savepoint.rollback()
            _current.reset(token)
            await _run_async(tx._on_rollback)
            raise
        await savepoint.commit()
        _current.reset(token)
        tx._release_into_parent()
        return

    conn: AsyncConnection = await ConnectionManager.async_engine(name).connect()
    try:
        if isolation_level is not None:
            await conn.execution_options(isolation_level=isolation_level)
        root = await abegin_write(conn)
        tx = Transaction(name, conn, True)
        token = _enter(tx)
        try:
            yield tx
        except BaseException:
            await root.rollback()
            _current.reset(token)
            await _run_async(tx._on_rollback)
            raise
        try:
            with commit_outcome():
                await root.commit()
        finally:
            _current.reset(token)
    finally:
        await conn.close()
    await _run_async(tx._on_commit)
