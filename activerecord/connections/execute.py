"""Where every operation meets a connection: written once as sync code on a `Connection`.

``run`` calls the operation directly; ``arun`` runs the very same function through
`AsyncConnection.run_sync`'s greenlet bridge (`_greenlets`): one greenlet hop per operation,
not one per statement. Inside a transaction both use the pinned connection; outside one, each
operation gets its own connection and commits (writes) or releases (reads) when it is done.
Writes always go to the primary; a read goes to a replica when `_routing` says so, and to the
primary when no replica can serve it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any, Concatenate, ParamSpec, TypeVar

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from ..dialects import abegin_write, backend_for, begin_write
from ..engine.greenlets import run_sync
from ..errors import TransactionError
from ..multidb import positions as _positions
from ..multidb import routing as _routing
from ..multidb.replicas import CONNECT_ERRORS, Cluster, Replica, probe
from . import transaction as _transaction
from .manager import ConnectionManager

P = ParamSpec("P")
R = TypeVar("R")


def _pinned(name: str, is_async: bool) -> Any:
    tx = _transaction.current(name)
    if tx is None:
        return None
    if tx.is_async != is_async:
        if tx.is_async:
            raise TransactionError(f"a sync call on connection {name!r} inside atransaction(): use the a-prefixed twin")
        raise TransactionError(f"an async call on connection {name!r} inside a sync transaction(): use the sync method")
    return tx.connection


def _note_write_in_transaction(name: str, cluster: Cluster, is_async: bool) -> None:
    """Remember the primary's position once the transaction holding this write commits."""
    tx = _transaction.current(name)
    if tx is None or tx.__dict__.get("_ar_position_hook"):
        return
    tx.__dict__["_ar_position_hook"] = True
    if not backend_for(cluster.primary.node.backend).has_write_positions:
        tx.on_commit(lambda: _positions.record(name, None))
    elif is_async:

        async def arecord() -> None:
            async with cluster.primary.async_.connect() as aconn:
                _positions.record(name, await run_sync(aconn, _positions.primary_lsn))

        tx.on_commit(arecord)
    else:

        def record() -> None:
            with cluster.primary.sync.connect() as conn:
                _positions.record(name, _positions.primary_lsn(conn))

        tx.on_commit(record)


def _sweep() -> None:
    if ConnectionManager._retired:
        ConnectionManager._sweep()


async def _asweep() -> None:
    if ConnectionManager._retired:
        await ConnectionManager.asweep()


def run(name: str, write: bool, op: Callable[Concatenate[Connection, P], R], *args: P.args, **kwargs: P.kwargs) -> R:
    """Run ``op(connection, *args)`` on connection ``name`` (sync), routed as `_routing` decides."""
    cluster = ConnectionManager.cluster(name)
    writes = write and _routing.check_write(name, args, cluster.config.read_only)
    conn = _pinned(name, False)
    if conn is not None:
        if writes and cluster.records_positions():
            _note_write_in_transaction(name, cluster, False)
        return op(conn, *args, **kwargs)
    try:
        if write:
            with cluster.primary.sync.connect() as conn:
                with begin_write(conn):
                    result = op(conn, *args, **kwargs)
                if writes and cluster.records_positions():
                    _positions.record(name, _positions.primary_lsn(conn))
                return result
        if cluster.replicas and _routing.wants_replica(name, cluster.automatic, args):
            return _read_from_replicas(name, cluster, op, *args, **kwargs)
        with cluster.primary.sync.connect() as conn:
            return op(conn, *args, **kwargs)
    finally:
        _sweep()


def _open_replica(name: str, cluster: Cluster, replica: Replica) -> Connection | None:
    """A connection to ``replica`` if it is reachable and fit to serve this read, else None."""
    try:
        conn = replica.engines.sync.connect()
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
    name: str, cluster: Cluster, op: Callable[Concatenate[Connection, P], R], *args: P.args, **kwargs: P.kwargs
) -> R:
    for replica in cluster.read_order():
        conn = _open_replica(name, cluster, replica)
        if conn is None:
            continue
        try:
            with conn:
                return op(conn, *args, **kwargs)
        except DBAPIError as exc:
            # The replica went away under the read: reads are safe to repeat elsewhere.
            if not exc.connection_invalidated:
                raise
            replica.mark_down(cluster.options.retry_after)
    with cluster.primary.sync.connect() as conn:
        return op(conn, *args, **kwargs)


async def arun(
    name: str, write: bool, op: Callable[Concatenate[Connection, P], R], *args: P.args, **kwargs: P.kwargs
) -> R:
    """Run the same ``op`` through ``AsyncConnection.run_sync`` (async), routed as `run` is."""
    cluster = ConnectionManager.cluster(name)
    writes = write and _routing.check_write(name, args, cluster.config.read_only)
    aconn: AsyncConnection | None = _pinned(name, True)
    if aconn is not None:
        if writes and cluster.records_positions():
            _note_write_in_transaction(name, cluster, True)
        return await run_sync(aconn, op, *args, **kwargs)
    try:
        if write:
            async with cluster.primary.async_.connect() as aconn:
                async with abegin_write(aconn):
                    result = await run_sync(aconn, op, *args, **kwargs)
                if writes and cluster.records_positions():
                    _positions.record(name, await run_sync(aconn, _positions.primary_lsn))
                return result
        if cluster.replicas and _routing.wants_replica(name, cluster.automatic, args):
            return await _aread_from_replicas(name, cluster, op, *args, **kwargs)
        async with cluster.primary.async_.connect() as aconn:
            return await run_sync(aconn, op, *args, **kwargs)
    finally:
        await _asweep()


async def _aopen_replica(name: str, cluster: Cluster, replica: Replica) -> AsyncConnection | None:
    try:
        aconn = await replica.engines.async_.connect()
    except CONNECT_ERRORS:
        replica.mark_down(cluster.options.retry_after)
        return None
    try:
        measured = await run_sync(aconn, probe) if cluster.needs_probe(replica, name) else None
    except CONNECT_ERRORS:
        await aconn.close()
        replica.mark_down(cluster.options.retry_after)
        return None
    if not cluster.accept(replica, name, measured):
        await aconn.close()
        return None
    return aconn


async def _aread_from_replicas(
    name: str, cluster: Cluster, op: Callable[Concatenate[Connection, P], R], *args: P.args, **kwargs: P.kwargs
) -> R:
    for replica in cluster.read_order():
        aconn = await _aopen_replica(name, cluster, replica)
        if aconn is None:
            continue
        try:
            return await run_sync(aconn, op, *args, **kwargs)
        except DBAPIError as exc:
            if not exc.connection_invalidated:
                raise
            replica.mark_down(cluster.options.retry_after)
        finally:
            await aconn.close()
    async with cluster.primary.async_.connect() as aconn:
        return await run_sync(aconn, op, *args, **kwargs)


@contextmanager
def connection(name: str) -> Iterator[Connection]:
    """A connection for a read that spans several calls (streaming): the pinned one, or a new one
    (on a replica when the routing rules send this read there)."""
    cluster = ConnectionManager.cluster(name)
    conn = _pinned(name, False)
    if conn is not None:
        yield conn
        return
    if cluster.replicas and _routing.wants_replica(name, cluster.automatic, ()):
        for replica in cluster.read_order():
            conn = _open_replica(name, cluster, replica)
            if conn is not None:
                with conn:
                    yield conn
                return
    with cluster.primary.sync.connect() as conn:
        yield conn


@asynccontextmanager
async def aconnection(name: str) -> AsyncIterator[AsyncConnection]:
    """The async twin of `connection`."""
    cluster = ConnectionManager.cluster(name)
    aconn: AsyncConnection | None = _pinned(name, True)
    if aconn is not None:
        yield aconn
        return
    if cluster.replicas and _routing.wants_replica(name, cluster.automatic, ()):
        for replica in cluster.read_order():
            aconn = await _aopen_replica(name, cluster, replica)
            if aconn is not None:
                try:
                    yield aconn
                finally:
                    await aconn.close()
                return
    async with cluster.primary.async_.connect() as aconn:
        yield aconn
