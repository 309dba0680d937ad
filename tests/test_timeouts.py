"""No call hangs when a server stops answering: timeouts through the loopback fault proxy.

A blackholed host accepts the TCP connection and never says a word; a stalled link stops
forwarding in the middle of a session (a half-open link, as after a crash behind a NAT). Both
must end with a retryable `sqlalchemy.exc.OperationalError` within the documented bound, on
PostgreSQL and MariaDB, sync and async, and the next call must work once the server is back.
Most tests configure small timeouts to stay fast; one measures the default connect bound.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from activerecord import ActiveRecord, ConnectionManager
from activerecord.dialects.options import DEFAULT_CONNECT_TIMEOUT, DEFAULT_READ_TIMEOUT
from activerecord.errors import is_retryable

from .backends import BackendDatabases
from .dual import IO
from .harness.proxy import Proxy

pytestmark = pytest.mark.backends("postgresql", "mysql")

# Seconds of slack over a configured timeout: scheduling, and on asyncpg SQLAlchemy's graceful
# close of the discarded connection (2 s) before the error is raised.
SLACK = 3.0
_SLEEP = {"postgresql": "SELECT pg_sleep(3)", "mysql": "SELECT SLEEP(3)"}


@pytest.fixture
def proxied(db: IO, backend_dbs: BackendDatabases) -> Iterator[Callable[..., tuple[str, Proxy]]]:
    """Configures connections that reach the test database through a fault proxy."""
    made: list[tuple[str, Proxy]] = []

    def configure(name: str, **settings: Any) -> tuple[str, Proxy]:
        config = backend_dbs.config("default")
        proxy = Proxy(config["port"]).__enter__()
        made.append((name, proxy))
        ConnectionManager.configure({name: {**config, "port": proxy.port, **settings}})
        return name, proxy

    yield configure
    for name, proxy in made:
        ConnectionManager.remove(name)
        proxy.__exit__(None, None, None)


async def _select(mode: str, name: str, sql: str = "SELECT 1") -> Any:
    if mode == "async":
        return await ActiveRecord.aexecute_raw(sql, using=name)
    return await asyncio.to_thread(ActiveRecord.execute_raw, sql, using=name)


async def _fails_within(bound: float, call: Any) -> sa.exc.OperationalError:
    started = time.monotonic()
    with pytest.raises(sa.exc.OperationalError) as caught:
        await asyncio.wait_for(call, bound + 30)  # (a hang fails the test, not the suite)
    elapsed = time.monotonic() - started
    assert elapsed < bound, f"took {elapsed:.1f}s, bound {bound:g}s"
    assert is_retryable(caught.value)
    return caught.value


async def test_a_blackholed_connect_gives_up_after_connect_timeout(
    db: IO, mode: str, proxied: Callable[..., tuple[str, Proxy]]
) -> None:
    name, proxy = proxied("blackholed", connect_timeout=2)  # (libpq's least: 2 s)
    proxy.blackhole()
    await _fails_within(2 + SLACK, _select(mode, name))
    proxy.passthrough()
    await _select(mode, name)  # the next call works


async def test_a_stalled_link_mid_session_gives_up_after_read_timeout(
    db: IO, mode: str, proxied: Callable[..., tuple[str, Proxy]]
) -> None:
    name, proxy = proxied("stalled", read_timeout=1)
    await _select(mode, name)  # a pooled connection, open through the proxy
    proxy.stall()
    await _fails_within(1 + SLACK, _select(mode, name))
    proxy.passthrough()
    await _select(mode, name)  # a new connection replaces the discarded one


async def test_a_short_read_timeout_holds_while_a_longer_ones_statement_is_waiting(
    db: IO, mode: str, backend: str, proxied: Callable[..., tuple[str, Proxy]]
) -> None:
    # Connections with different read timeouts in one process: the patient one's statement,
    # waiting first, must not push the stalled one's bound out to its own.
    patient, _ = proxied("patient", read_timeout=60)
    name, proxy = proxied("stalled", read_timeout=1)
    await _select(mode, name)
    long_statement = asyncio.ensure_future(_select(mode, patient, _SLEEP[backend]))
    await asyncio.sleep(1.2)  # (it waits on the server; any bound armed before it has passed)
    proxy.stall()
    await _fails_within(1 + SLACK, _select(mode, name))
    await long_statement  # ran to its end, untouched
    proxy.passthrough()
    await _select(mode, name)


async def test_statement_timeout_ends_a_long_statement_on_the_server(
    db: IO, mode: str, backend: str, proxied: Callable[..., tuple[str, Proxy]]
) -> None:
    name, _ = proxied("bounded", statement_timeout=0.5)
    started = time.monotonic()
    with pytest.raises(sa.exc.DBAPIError):
        await _select(mode, name, _SLEEP[backend])
    assert time.monotonic() - started < 2.5
    await _select(mode, name)  # the connection is still good


@pytest.mark.modes("async")  # (the sync driver is measured in the same run, at the same time)
async def test_the_default_connect_bound_holds_for_every_driver_at_once(
    db: IO, proxied: Callable[..., tuple[str, Proxy]]
) -> None:
    name, proxy = proxied("default_bound")
    proxy.blackhole()
    # Both drivers at once: one default bound of waiting, not two.
    errors = await asyncio.gather(
        _fails_within(DEFAULT_CONNECT_TIMEOUT + SLACK, _select("sync", name)),
        _fails_within(DEFAULT_CONNECT_TIMEOUT + SLACK, _select("async", name)),
    )
    assert len(errors) == 2


def _socket_of(driver_connection: Any) -> socket.socket:
    if hasattr(driver_connection, "pgconn"):  # psycopg: a file descriptor
        return socket.socket(fileno=socket.dup(driver_connection.pgconn.socket))
    raw = getattr(driver_connection, "_sock", None)  # PyMySQL
    if raw is None:  # asyncpg, asyncmy
        raw = driver_connection._transport.get_extra_info("socket")
    return socket.socket(fileno=socket.dup(raw.fileno()))


def _bound_of(adapted: Any) -> float | None:
    """The read timeout activerecord's asyncmy connection class applies to each statement."""
    from activerecord.dialects.mysql import _timed_connection

    return DEFAULT_READ_TIMEOUT if type(adapted) is _timed_connection(DEFAULT_READ_TIMEOUT) else None


async def test_default_keepalives_and_read_timeout_are_on_every_connection(db: IO, mode: str) -> None:
    if mode == "async":
        conn = await ConnectionManager.async_engine("default").connect()
        raw = await conn.get_raw_connection()
        driver = raw.driver_connection
        adapted = raw.dbapi_connection
    else:
        sync_conn = ConnectionManager.engine("default").connect()
        driver = sync_conn.connection.driver_connection
        adapted = None
    sock = _socket_of(driver)
    try:
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == 30
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL) == 10
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT) == 3
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT) == 60_000
    finally:
        sock.close()
    # The read timeout each driver enforces, at its default.
    read_timeout = {
        "activerecord": lambda: driver.read_timeout,  # psycopg's connection class with one
        "asyncpg": lambda: driver._config.command_timeout,
        # asyncmy: bounded around each statement by activerecord's adapted cursor (see dialects/mysql)
        "asyncmy": lambda: _bound_of(adapted),
    }.get(type(driver).__module__.split(".")[0], lambda: driver._read_timeout)()
    assert read_timeout == DEFAULT_READ_TIMEOUT
    if mode == "async":
        await conn.close()
    else:
        sync_conn.close()
