"""Where every operation meets a connection: written once as sync code on a `Connection`.

``run`` calls the operation directly; ``arun`` runs the very same function through
`AsyncConnection.run_sync`: one greenlet hop per operation, not one per statement. Inside a
transaction both use the pinned connection; outside one, each operation gets its own connection
and commits (writes) or releases (reads) when it is done.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any, Concatenate, ParamSpec, TypeVar

from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from . import _transaction
from ._manager import ConnectionManager
from .errors import TransactionError

P = ParamSpec("P")
R = TypeVar("R")


def _pinned(name: str, is_async: bool) -> Any:
    tx = _transaction.current(name)
    if tx is None:
        return None
    if tx.is_async != is_async:
        if tx.is_async:
            raise TransactionError(
                f"a sync call on connection {name!r} inside atransaction(): use the a-prefixed twin"
            )
        raise TransactionError(
            f"an async call on connection {name!r} inside a sync transaction(): use the sync method"
        )
    return tx.connection


def run(
    name: str, write: bool, op: Callable[Concatenate[Connection, P], R], *args: P.args, **kwargs: P.kwargs
) -> R:
    """Run ``op(connection, *args)`` on connection ``name`` (sync)."""
    conn = _pinned(name, False)
    if conn is not None:
        return op(conn, *args, **kwargs)
    engine = ConnectionManager.engine(name)
    if write:
        with engine.begin() as conn:
            return op(conn, *args, **kwargs)
    with engine.connect() as conn:
        return op(conn, *args, **kwargs)


async def arun(
    name: str, write: bool, op: Callable[Concatenate[Connection, P], R], *args: P.args, **kwargs: P.kwargs
) -> R:
    """Run the same ``op`` through ``AsyncConnection.run_sync`` (async)."""
    aconn: AsyncConnection | None = _pinned(name, True)
    if aconn is not None:
        return await aconn.run_sync(op, *args, **kwargs)
    engine = ConnectionManager.async_engine(name)
    if write:
        async with engine.begin() as aconn:
            return await aconn.run_sync(op, *args, **kwargs)
    async with engine.connect() as aconn:
        return await aconn.run_sync(op, *args, **kwargs)


@contextmanager
def connection(name: str) -> Iterator[Connection]:
    """A connection for a read that spans several calls (streaming): the pinned one, or a new one."""
    conn = _pinned(name, False)
    if conn is not None:
        yield conn
        return
    with ConnectionManager.engine(name).connect() as conn:
        yield conn


@asynccontextmanager
async def aconnection(name: str) -> AsyncIterator[AsyncConnection]:
    """The async twin of `connection`."""
    aconn: AsyncConnection | None = _pinned(name, True)
    if aconn is not None:
        yield aconn
        return
    async with ConnectionManager.async_engine(name).connect() as aconn:
        yield aconn
