"""aiosqlite under SQLAlchemy with one trip to the driver's thread per statement.

aiosqlite runs sqlite3 on a thread of its own, and every awaited call is a round trip there
through a queue and the event loop (tens of µs each). SQLAlchemy's adapter cursor makes four per
statement: open a cursor, execute, fetch the rows, close. The cursor here makes one, running the
whole sqlite3 cursor lifecycle on that thread and keeping the rows, as SQLAlchemy's buffered
cursor does; a statement that usually takes under 2 ms is waited for in place, for 4 ms at
most, instead of through the event loop (`_call`), and so are commit and rollback.
Everything else (the connection, the server-side cursor used for streaming) is SQLAlchemy's
adapter unchanged. The calls of all connections to one file run on that file's few shared
threads (`sqlite_threads`) instead of one thread per connection.

The cursor and the shared threads lean on private parts of SQLAlchemy's adapter and of aiosqlite
(both pinned to the tested versions in pyproject.toml). On first use `dbapi` checks that those
parts are still as this module expects; when they are not, it warns and returns SQLAlchemy's
stock adapter instead.

This module alone imports aiosqlite: SQLAlchemy loads it through its dialect registry
(``sqlite+activerecord_aiosqlite``, see `sqlite`) when an async SQLite engine is first created.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import inspect
import sqlite3
import threading
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

import aiosqlite
from greenlet import getcurrent
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
    SQLiteDialect_aiosqlite,
)
from sqlalchemy.util import EMPTY_DICT
from sqlalchemy.util.concurrency import await_

from .sqlite import ActiveRecordSQLite
from .sqlite_gate import gate_key
from .sqlite_threads import Lane, Pending, workers_for

T = TypeVar("T")

_Outcome = tuple[Any, int, Any, list[Any] | None]


def _run_on_thread(conn: sqlite3.Connection, operation: str, parameters: Any, many: bool) -> _Outcome:
    cursor = conn.cursor()
    try:
        if many:
            cursor.executemany(operation, parameters)
        elif parameters is None:
            cursor.execute(operation)
        else:
            cursor.execute(operation, parameters)
        description = cursor.description
        rows = cursor.fetchall() if description else None
        # rowcount after the fetch: for DML with RETURNING sqlite3 counts rows as they are read.
        return description, cursor.rowcount, cursor.lastrowid, rows
    finally:
        cursor.close()


class _Cursor(AsyncAdapt_aiosqlite_cursor):
    """A buffered cursor whose execute is one call on aiosqlite's thread."""

    __slots__ = ("_outcome", "_size")

    def __init__(self, adapt_connection: Any) -> None:
        # No driver cursor is opened here (SQLAlchemy's opens one, a round trip of its own).
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._cursor = None  # type: ignore[assignment]
        self._soft_closed_memoized = EMPTY_DICT
        self._rows = collections.deque()
        self._outcome: _Outcome = (None, -1, None, None)
        self._size = 1

    @property
    def description(self) -> Any:
        return self._outcome[0]

    @property
    def rowcount(self) -> int:
        return self._outcome[1]

    @property
    def lastrowid(self) -> Any:
        return self._outcome[2]

    @property
    def arraysize(self) -> int:
        return self._size

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._size = value

    def execute(self, operation: Any, parameters: Any = None) -> Any:
        try:
            self._run(operation, parameters, False)
        except Exception as error:
            self._adapt_connection._handle_exception(error)

    def executemany(self, operation: Any, seq_of_parameters: Any) -> Any:
        try:
            self._run(operation, seq_of_parameters, True)
        except Exception as error:
            self._adapt_connection._handle_exception(error)

    def _run(self, operation: Any, parameters: Any, many: bool) -> None:
        outcome: _Outcome = _call(self._adapt_connection, operation, _run_on_thread, operation, parameters, many)
        self._outcome = outcome
        self._rows = collections.deque(outcome[3] or ())

    async def _async_soft_close(self) -> None:
        return  # the driver cursor is closed already, on its thread

    def close(self) -> None:
        self._rows.clear()


class _Connection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ()
    _cursor_cls = _Cursor

    def commit(self) -> None:
        self._end("COMMIT", sqlite3.Connection.commit)

    def rollback(self) -> None:
        self._end("ROLLBACK", sqlite3.Connection.rollback)

    def _end(self, key: str, method: Callable[[sqlite3.Connection], None]) -> None:
        if self._connection._connection:  # (nothing to end on a closed connection)
            try:
                _call(self, key, method)
            except Exception as error:
                self._handle_exception(error)


#: A statement whose recent runs took less than this on average (seconds) is waited for in place.
QUICK = 0.002
#: How long the event loop's thread waits in place for a call before it awaits the rest.
PATIENCE = 0.004
#: A statement taken for slow is still waited for in place on every PROBE-th call: awaited, its
#: run includes the waits for the GIL while the loop runs other tasks, so only a run in place
#: tells that it has become quick again (after a burst of load, or a lock that was held).
PROBE = 8
# Statements whose timings a file's workers keep (see `Workers.recent`).
_RECENT_MAX = 2048


class _Timing:
    """One statement on one file: its recent run time in place (a moving average, seconds) and
    the calls that have awaited it since it last ran in place."""

    __slots__ = ("awaited", "seconds")

    def __init__(self) -> None:
        self.seconds = 0.0
        self.awaited = 0


def _call(adapted: Any, key: str, fn: Callable[..., T], *args: Any) -> T:
    """``fn(the sqlite3 connection, *args)`` on the connection's thread, from SQLAlchemy's greenlet;
    ``key`` (the SQL) names the statement whose run times decide how it is waited for.

    A quick statement (its recent runs under `QUICK`) is waited for in place, for up to
    `PATIENCE`: the event loop's thread blocks, with the GIL released, so the driver's thread
    runs the call at once. Awaited instead, the call would wait for the GIL after each step of
    SQLite's while the loop runs other tasks (a thread that wants the GIL waits for the holder
    to block, or for the 5 ms switch interval), and pay an asyncio future and a wake-up of the
    loop. Measured on W8 (100 tasks over a pool of 10, each operation starting from the loop):
    1,040-1,400 operations a second in place against 1,030-1,180 with every call awaited. A
    slower statement, or one still running after `PATIENCE` (a lock wait, a long query), is
    awaited, so the loop is never held longer than that. Only runs in place count towards the
    average, and a slow statement is tried in place again every `PROBE` calls: an awaited run is
    slowed by the busy loop itself, and counting it would keep a statement that was slow once
    (in a burst of load) on the slow path for good.
    """
    driver: Any = adapted._connection
    if not isinstance(driver, _SharedConnection):  # (the user's own creator: aiosqlite's thread)
        result: T = await_(driver._execute(fn, driver._conn, *args))
        return result
    lane: Lane = driver._tx  # type: ignore[assignment]
    conn = driver._conn
    pending = Pending(functools.partial(fn, conn, *args))
    lane.put_nowait((None, pending.run))
    times = lane.workers.recent
    timing = times.get(key)
    if timing is None:
        if len(times) >= _RECENT_MAX:
            times.clear()  # (statements with literals in their SQL: keep the table bounded)
        timing = times[key] = _Timing()
    in_place = timing.seconds < QUICK or timing.awaited >= PROBE
    if in_place and pending.wait(PATIENCE):
        if not getattr(getcurrent(), "activerecord_awaits_optional", False):
            # SQLAlchemy's AsyncConnection.execute refuses a call that never awaited (its check
            # for a sync driver): one await of a done future, which does not yield to the loop.
            done = asyncio.get_running_loop().create_future()
            done.set_result(None)
            await_(done)
    else:
        future = pending.later(asyncio.get_running_loop())
        if future is not None:
            await_(future)
    if in_place:
        # (a run counts as at most 4 * PATIENCE: a lock waited for says the statement was slow,
        # not how slow it will be, and the average must come back within a few quick runs)
        timing.awaited = 0
        timing.seconds += (min(pending.seconds, 4 * PATIENCE) - timing.seconds) / 4
    else:
        timing.awaited += 1
    if not pending.ok:
        raise pending.value
    value: T = pending.value
    return value


class _NoThread:
    """Stands for the thread aiosqlite would give the connection (it only ever starts it)."""

    daemon = True

    def start(self) -> None:
        return


class _SharedConnection(aiosqlite.Connection):
    """aiosqlite's connection whose calls run on its file's shared threads (`sqlite_threads`)."""

    def __init__(self, connector: Any, iter_chunk_size: int, lane: Lane) -> None:
        super().__init__(connector, iter_chunk_size)
        self._tx = lane  # type: ignore[assignment]  # (aiosqlite only calls its put_nowait)
        self._thread = _NoThread()  # type: ignore[assignment]

    def stop(self) -> Any:
        """Close the sqlite3 connection after the calls before; no thread of its own to stop."""
        self._running = False
        lane: Lane = self._tx  # type: ignore[assignment]
        if lane.closed:
            return None  # (stopped before: its workers may be gone, and nothing is left to close)

        def close() -> None:
            try:
                if self._connection is not None:
                    self._connection.close()
                    self._connection = None
            finally:
                lane.close()

        try:
            future = asyncio.get_event_loop().create_future()
        except Exception:  # (no event loop: from __del__ after the loop is gone)
            future = None
        lane.put_nowait((future, close))
        return future


def _connect(database: Any, iter_chunk_size: int = 64, **kwargs: Any) -> _SharedConnection:
    """`aiosqlite.connect`, on shared threads (a connection's calls may run on any of them, one
    at a time: hence ``check_same_thread=False``)."""
    name = database.decode() if isinstance(database, bytes) else str(database)
    kwargs["check_same_thread"] = False

    def connector() -> sqlite3.Connection:
        connection: sqlite3.Connection = sqlite3.connect(name, **kwargs)
        return connection

    return _SharedConnection(connector, iter_chunk_size, workers_for(gate_key(name)).lane())


class _DBAPI(AsyncAdapt_aiosqlite_dbapi):
    def connect(self, *arg: Any, **kw: Any) -> _Connection:
        if kw.get("async_creator_fn") is not None:  # (the user's own creator: aiosqlite's threads)
            adapted = super().connect(*arg, **kw)
            return _Connection(self, adapted._connection)
        driver: Any = await_(_connect(*arg, **kw))
        return _Connection(self, driver)


#: The attributes SQLAlchemy's adapter cursor holds: `_Cursor` sets each of them itself.
_CURSOR_SLOTS = frozenset({"_adapt_connection", "_connection", "_cursor", "_rows", "_soft_closed_memoized"})


def _problem() -> str | None:
    """What no longer matches the internals the fast cursor relies on, or None when all do."""
    slots = {name for cls in AsyncAdapt_aiosqlite_cursor.__mro__ for name in getattr(cls, "__slots__", ())}
    if slots != _CURSOR_SLOTS:
        return f"SQLAlchemy's aiosqlite cursor holds {sorted(slots)}, not {sorted(_CURSOR_SLOTS)}"
    for owner, name in (
        (AsyncAdapt_aiosqlite_connection, "_handle_exception"),
        (AsyncAdapt_aiosqlite_connection, "_cursor_cls"),
        (AsyncAdapt_aiosqlite_cursor, "_async_soft_close"),
        (aiosqlite.Connection, "_conn"),
    ):
        if not any(name in vars(cls) or name in getattr(cls, "__slots__", ()) for cls in owner.__mro__):
            return f"{owner.__qualname__}.{name} is gone"
    execute = getattr(aiosqlite.Connection, "_execute", None)
    if execute is None or not inspect.iscoroutinefunction(execute):
        return "aiosqlite.Connection._execute is no longer a coroutine function"
    # The shared threads stand in for the connection's own: its queue and thread are attributes
    # set in __init__ (before 0.22 the connection was itself the thread), stop() closes it.
    if issubclass(aiosqlite.Connection, threading.Thread) or "stop" not in vars(aiosqlite.Connection):
        return "aiosqlite.Connection is a thread itself or has no stop()"
    probe = aiosqlite.Connection(lambda: sqlite3.connect(":memory:"), 64)  # (never connected)
    if not (hasattr(getattr(probe, "_tx", None), "put_nowait") and hasattr(getattr(probe, "_thread", None), "start")):
        return "aiosqlite.Connection keeps no _tx queue and _thread"
    return None


@functools.cache
def fast_cursor_usable() -> bool:
    """Whether the fast cursor's self-check passed (checked once, warning when it did not)."""
    problem = _problem()
    if problem is None:
        return True
    warnings.warn(
        f"activerecord: the fast aiosqlite cursor is off ({problem}); using SQLAlchemy's stock "
        "aiosqlite adapter, which is correct but slower. Check the pinned SQLAlchemy and aiosqlite versions.",
        RuntimeWarning,
        stacklevel=2,
    )
    return False


def dbapi() -> Any:
    """The DBAPI module of ``sqlite+aiosqlite``: with the fast cursor when its self-check passed."""
    if fast_cursor_usable():
        return _DBAPI(aiosqlite, sqlite3)
    return AsyncAdapt_aiosqlite_dbapi(aiosqlite, sqlite3)


class AioSQLiteDialect(ActiveRecordSQLite, SQLiteDialect_aiosqlite):
    """SQLAlchemy's aiosqlite dialect with activerecord's transaction control and fast cursor."""

    supports_statement_cache = True

    @classmethod
    def import_dbapi(cls) -> Any:
        return dbapi()

    def _in_transaction(self, driver_connection: Any) -> bool:
        # aiosqlite's own property reads the sqlite3 connection's flag without a trip to its thread.
        return bool(driver_connection._connection.in_transaction)
