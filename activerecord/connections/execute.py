"""Where every operation meets a connection: written once as sync code on a `Connection`.

``run`` calls the operation directly; ``arun`` runs the very same ``run`` through the greenlet
bridge (`run_in_greenlet`), where it picks the async engine's ``sync_engine``: one greenlet hop
per operation, not one per statement. Inside a transaction both use the pinned connection;
outside one, each operation gets its own connection. An operation of one statement (marked
`operations.one_statement`) runs there in autocommit: one round trip, the statement its own
commit. Any other runs in a transaction of its own, committed (writes) or rolled back when the
connection is released (reads). Writes always go to the primary; a read goes to a replica when
`_routing` says so, and to the primary when no replica can serve it.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Concatenate, ParamSpec, TypeVar

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ..dialects import autocommits, backend_for, begin_autocommit, begin_write
from ..engine.engines import NodeEngines
from ..engine.greenlets import bridged, run_in_greenlet, wait
from ..engine.operations import is_one_statement
from ..errors import TransactionError
from ..multidb import positions as _positions
from ..multidb import routing as _routing
from ..multidb.replicas import CONNECT_ERRORS, Cluster, Replica, probe
from . import transaction as _transaction
from .manager import ConnectionManager
from .outcome import commit_outcome

P = ParamSpec("P")
R = TypeVar("R")


def _engine(node: NodeEngines, is_async: bool) -> Engine:
    """The engine this mode's connections come from: inside the bridge, the async one's."""
    return node.async_.sync_engine if is_async else node.sync


def _pinned(name: str, is_async: bool) -> _transaction.Transaction | None:
    tx = _transaction.current(name)
    if tx is None:
        return None
    if tx.is_async != is_async:
        if tx.is_async:
            raise TransactionError(f"a sync call on connection {name!r} inside atransaction(): use the a-prefixed twin")
        raise TransactionError(f"an async call on connection {name!r} inside a sync transaction(): use the sync method")
    return tx


def _note_write_in_transaction(name: str, cluster: Cluster, tx: _transaction.Transaction) -> None:
    """Remember the primary's position once the transaction holding this write commits."""
    if tx.__dict__.get("_ar_position_hook"):
        return
    tx.__dict__["_ar_position_hook"] = True
    if not backend_for(cluster.primary.node.backend).has_write_positions:
        tx.on_commit(lambda: _positions.record(name, None))
    else:
        engine = _engine(cluster.primary, tx.is_async)

        def record() -> None:
            def read() -> int | None:
                with engine.connect() as conn:
                    return _positions.primary_lsn(conn)

            _positions.record(name, _position_or_none(read))

        tx.on_commit(record)


def _position_or_none(read: Callable[[], int | None]) -> int | None:
    """The primary's position after a committed write, or None when it cannot be read.

    The write is committed whatever happens here: when the primary went away just after the
    commit (a failover), the write is remembered without a position, which sends this context's
    reads to the primary until the replicas have surely caught up.
    """
    try:
        return read()
    except DBAPIError:
        return None


def _sweep(is_async: bool) -> None:
    if ConnectionManager._retired:
        if is_async:
            wait(ConnectionManager.asweep())
        else:
            ConnectionManager._sweep()


def run(name: str, write: bool, op: Callable[Concatenate[Connection, P], R], *args: P.args, **kwargs: P.kwargs) -> R:
    """Run ``op(connection, *args)`` on connection ``name``, routed as `_routing` decides.

    Sync code calls it directly (on a thread whose event loop is running that raises
    `SyncInAsyncError` first); `arun` runs it inside the greenlet bridge.
    """
    is_async = bridged()
    cluster = ConnectionManager.cluster(name)
    writes = write and _routing.check_write(name, args, cluster.config.read_only)
    tx = _pinned(name, is_async)
    if tx is not None:
        if writes and cluster.records_positions():
            _note_write_in_transaction(name, cluster, tx)
        return op(tx.sync_connection, *args, **kwargs)
    try:
        if write:
            with _engine(cluster.primary, is_async).connect() as conn:
                if is_one_statement(op) and autocommits(conn):
                    root = begin_autocommit(conn, write=True)
                    with root:
                        # The statement is the commit: a reply lost is an unknown outcome.
                        with commit_outcome():
                            result = op(conn, *args, **kwargs)
                        root.commit()  # (sends nothing; puts the driver's mode back)
                else:
                    root = begin_write(conn)
                    with root:  # rolls back on an error in op
                        result = op(conn, *args, **kwargs)
                        with commit_outcome():
                            root.commit()
                if writes and cluster.records_positions():
                    _positions.record(name, _position_or_none(lambda: _read(conn, _positions.primary_lsn)))
                return result
        if cluster.replicas and _routing.wants_replica(name, cluster.automatic, args):
            return _read_from_replicas(name, cluster, is_async, op, *args, **kwargs)
        with _engine(cluster.primary, is_async).connect() as conn:
            return _read(conn, op, *args, **kwargs)
    finally:
        _sweep(is_async)


def _read(conn: Connection, op: Callable[Concatenate[Connection, P], R], *args: P.args, **kwargs: P.kwargs) -> R:
    """``op`` on ``conn``, outside any transaction of the caller's: in autocommit when it is one
    statement, else in a transaction that releasing ``conn`` rolls back (one snapshot for all
    its statements where the isolation level gives one)."""
    if is_one_statement(op) and not conn.in_transaction() and autocommits(conn):
        begin_autocommit(conn)
    return op(conn, *args, **kwargs)


async def arun(
    name: str, write: bool, op: Callable[Concatenate[Connection, P], R], *args: P.args, **kwargs: P.kwargs
) -> R:
    """`run` (async): the same code, through the greenlet bridge."""
    return await run_in_greenlet(functools.partial(run, name, write, op, *args, **kwargs))


def _open_replica(name: str, cluster: Cluster, replica: Replica, is_async: bool) -> Connection | None:
    """A connection to ``replica`` if it is reachable and fit to serve this read, else None."""
    try:
        conn = _engine(replica.engines, is_async).connect()
    except CONNECT_ERRORS:
        replica.mark_down(cluster.options.retry_after)
        return None
    try:
        measured = probe(conn) if cluster.needs_probe(replica, name) else None
    except CONNECT_ERRORS:
        conn.close()
        replica.mark_down(cluster.options.retry_after)
        return None
    if not cluster.accept(replica, name, measured):
        conn.close()
        return None
    return conn


def _read_from_replicas(
    name: str,
    cluster: Cluster,
    is_async: bool,
    op: Callable[Concatenate[Connection, P], R],
    *args: P.args,
    **kwargs: P.kwargs,
) -> R:
    for replica in cluster.read_order():
        conn = _open_replica(name, cluster, replica, is_async)
        if conn is None:
            continue
        try:
            with conn:
                return _read(conn, op, *args, **kwargs)
        except DBAPIError as exc:
            # The replica went away under the read: reads are safe to repeat elsewhere.
            if not exc.connection_invalidated:
                raise
            replica.mark_down(cluster.options.retry_after)
    with _engine(cluster.primary, is_async).connect() as conn:
        return _read(conn, op, *args, **kwargs)


@contextmanager
def connection(name: str) -> Iterator[Connection]:
    """A connection for a read that spans several calls (streaming): the pinned one, or a new one
    (on a replica when the routing rules send this read there)."""
    is_async = bridged()
    cluster = ConnectionManager.cluster(name)
    tx = _pinned(name, is_async)
    if tx is not None:
        yield tx.sync_connection
        return
    if cluster.replicas and _routing.wants_replica(name, cluster.automatic, ()):
        for replica in cluster.read_order():
            conn = _open_replica(name, cluster, replica, is_async)
            if conn is not None:
                with conn:
                    yield conn
                return
    with _engine(cluster.primary, is_async).connect() as conn:
        yield conn


@asynccontextmanager
async def aconnection(name: str) -> AsyncIterator[AsyncConnection]:
    """The async twin of `connection`: the same choice, opened and closed through the bridge."""
    tx = _pinned(name, True)
    if tx is not None:
        yield tx.connection
        return
    opened = connection(name)
    conn = await run_in_greenlet(opened.__enter__)
    try:
        yield AsyncConnection(AsyncEngine(conn.engine), conn)
    except BaseException as exc:
        await run_in_greenlet(opened.__exit__, type(exc), exc, exc.__traceback__)
        raise
    await run_in_greenlet(opened.__exit__, None, None, None)
