"""One process's connections to one SQLite file take turns in Python, not in SQLite's busy handler.

SQLite lets one connection write at a time, and in its rollback-journal modes a commit must also
wait until no connection is reading. A connection that finds the file locked sleeps in SQLite's
busy handler (1, 2, 5, 10 ... 100 ms) and tries again, so under contention callers sleep long past
the moment the lock came free and the file sits idle: sixteen threads over ten connections doing
service-like work (70% reads) spent most of their time asleep there. The gate makes the
connections of one process wait for each other in arrival order, and wake the moment what they
wait for is released:

- writers take turns: a write transaction from its ``BEGIN IMMEDIATE`` to its end, or one write
  statement run in autocommit, first come first served;
- in the rollback-journal modes a commit (and a write statement in autocommit, which is its own
  commit) waits until the readers inside are done, and readers that arrive meanwhile wait for
  it; in WAL mode readers never wait.

The gate only orders what SQLite would serialize anyway: readers still read beside an open write
transaction until its commit, as SQLite lets them. Other processes on the same file still meet in
SQLite's busy handler. A caller (thread, or asyncio task) that holds the gate through one
connection passes it freely on another, where SQLite's own locking decides as before: a read
inside a write transaction must not wait for that transaction. A wait longer than the
connection's busy timeout fails as SQLite fails, with "database is locked".
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections import deque
from collections.abc import Awaitable
from typing import Literal

from .deadlines import bounded

#: What a connection holds: a read, the writer's turn, the writer's turn with the commit's
#: exclusion of readers, or nothing of its own (its owner holds the gate on another connection).
Held = Literal["read", "write", "commit", "pass"]

_READ: Held = "read"
_WRITE: Held = "write"
_COMMIT: Held = "commit"
_PASS: Held = "pass"


class _Waiter:
    """One caller waiting: a thread blocked on a lock, or a task awaiting a future."""

    __slots__ = ("future", "granted", "key", "kind", "lock", "loop", "owner")

    def __init__(self, key: int, kind: Held, owner: object, loop: asyncio.AbstractEventLoop | None) -> None:
        self.key = key
        self.kind = kind
        self.owner = owner
        self.granted = False
        self.loop = loop
        self.future: asyncio.Future[None] | None = loop.create_future() if loop is not None else None
        self.lock: threading.Lock | None = None
        if loop is None:
            self.lock = threading.Lock()
            self.lock.acquire()

    def wake(self) -> None:
        if self.lock is not None:
            self.lock.release()
            return
        assert self.loop is not None
        if asyncio._get_running_loop() is self.loop:
            _resolve(self.future)
        else:
            self.loop.call_soon_threadsafe(_resolve, self.future)


def _resolve(future: asyncio.Future[None] | None) -> None:
    if future is not None and not future.done():
        future.set_result(None)


class GateTimeout(Exception):
    """A wait at the gate outlasted the busy timeout (the dialect raises the driver's error)."""


class Gate:
    """The turns of one SQLite database's connections in this process (see the module's docstring).

    Connections are named by a key (``id()`` of the driver connection) and callers by an owner
    (thread id, or asyncio task). Every method is safe from any thread.
    """

    def __init__(self) -> None:
        #: Whether the database is in WAL mode, where readers and a commit do not exclude each other.
        self.wal = False
        self._mutex = threading.Lock()
        self._writer: object | None = None
        self._committing = False
        self._readers: dict[object, int] = {}
        self._held: dict[int, tuple[Held, object]] = {}
        self._queue: deque[_Waiter] = deque()

    # -- entering -----------------------------------------------------------------------------

    def enter(self, key: int, owner: object, write: bool, timeout: float) -> None:
        """Take connection ``key``'s turn to read or to write (blocking the calling thread)."""
        waiter = self._try_enter(key, owner, _WRITE if write else _READ, None)
        if waiter is not None:
            self._block(waiter, timeout)

    def aenter(self, key: int, owner: object, write: bool, timeout: float) -> Awaitable[None] | None:
        """`enter` for a task: None when the turn is given at once, else an awaitable that waits
        for it without blocking the event loop."""
        waiter = self._try_enter(key, owner, _WRITE if write else _READ, asyncio.get_running_loop())
        return None if waiter is None else self._await(waiter, timeout)

    def commit(self, key: int, timeout: float) -> None:
        """Before connection ``key`` commits its write: wait until no other caller is reading."""
        waiter = self._try_commit(key, None)
        if waiter is not None:
            self._block(waiter, timeout)

    def acommit(self, key: int, timeout: float) -> Awaitable[None] | None:
        """`commit` for a task, as `aenter` waits."""
        waiter = self._try_commit(key, asyncio.get_running_loop())
        return None if waiter is None else self._await(waiter, timeout)

    def leave(self, key: int) -> None:
        """Connection ``key``'s transaction or statement is over: release what it held (if anything)."""
        with self._mutex:
            held = self._held.pop(key, None)
            if held is None:
                return
            kind, owner = held
            if kind == _READ:
                left = self._readers[owner] - 1
                if left:
                    self._readers[owner] = left
                else:
                    del self._readers[owner]
            elif kind != _PASS:
                self._writer = None
                self._committing = False
            self._dispatch()

    @property
    def waiting(self) -> int:
        """How many callers are waiting for their turn."""
        return len(self._queue)

    @property
    def idle(self) -> bool:
        """Whether no connection holds a turn and nobody waits."""
        with self._mutex:
            return not self._held and not self._queue

    # -- the state machine, always under the mutex ----------------------------------------------

    def _try_enter(self, key: int, owner: object, kind: Held, loop: asyncio.AbstractEventLoop | None) -> _Waiter | None:
        with self._mutex:
            if key in self._held:
                return None
            if owner == self._writer or owner in self._readers:
                self._held[key] = (_PASS, owner)
                return None
            if kind == _READ and self.wal:
                return None
            if not self._queue and self._free(kind):
                self._grant(key, kind, owner)
                return None
            waiter = _Waiter(key, kind, owner, loop)
            self._queue.append(waiter)
            self._dispatch()
            return None if waiter.granted else waiter

    def _try_commit(self, key: int, loop: asyncio.AbstractEventLoop | None) -> _Waiter | None:
        with self._mutex:
            held = self._held.get(key)
            if held is None or held[0] != _WRITE or self.wal:
                return None
            if len(self._readers) == (held[1] in self._readers):
                self._grant(key, _COMMIT, held[1])
                return None
            waiter = _Waiter(key, _COMMIT, held[1], loop)
            self._queue.appendleft(waiter)  # the writer's commit goes before any new reader
            self._dispatch()
            return None if waiter.granted else waiter

    def _free(self, kind: Held) -> bool:
        """Whether a read or a writer's turn may be granted now (nobody queued)."""
        return self._writer is None if kind == _WRITE else not self._committing

    def _grant(self, key: int, kind: Held, owner: object) -> None:
        if kind == _COMMIT:
            self._committing = True
        elif kind == _WRITE:
            self._writer = owner
        else:
            self._readers[owner] = self._readers.get(owner, 0) + 1
        self._held[key] = (kind, owner)

    def _dispatch(self) -> None:
        """Grant every waiter that may go now, in arrival order (a commit first)."""
        if not self._queue:
            return
        writer_waiting = False
        commit_waiting = False
        for waiter in list(self._queue):
            if waiter.kind == _COMMIT:
                if len(self._readers) - (waiter.owner in self._readers):
                    commit_waiting = True
                    continue
            elif waiter.kind == _WRITE:
                if self._writer is not None or writer_waiting:
                    writer_waiting = True
                    continue
            elif self._committing or commit_waiting:
                continue
            self._grant(waiter.key, waiter.kind, waiter.owner)
            self._queue.remove(waiter)
            waiter.granted = True
            waiter.wake()

    def _abandon(self, waiter: _Waiter) -> bool:
        """A waiter gives up (timeout, cancellation): True if it was granted meanwhile."""
        with self._mutex:
            if waiter.granted:
                return True
            self._queue.remove(waiter)
            self._dispatch()  # a commit given up may unblock readers queued behind it
            return False

    # -- waiting ----------------------------------------------------------------------------

    def _block(self, waiter: _Waiter, timeout: float) -> None:
        assert waiter.lock is not None
        if not waiter.lock.acquire(timeout=max(timeout, 0.0)) and not self._abandon(waiter):
            raise GateTimeout(timeout)

    async def _await(self, waiter: _Waiter, timeout: float) -> None:
        assert waiter.future is not None
        try:
            await bounded(waiter.future, max(timeout, 0.0), lambda: GateTimeout(timeout))
        except GateTimeout:
            if not self._abandon(waiter):
                raise
        except BaseException:
            # Cancelled: a turn granted meanwhile must go on to the next caller.
            if self._abandon(waiter):
                self.leave(waiter.key)
            raise


def owner() -> object:
    """Who is asking: the running asyncio task, or else the thread."""
    try:
        task = asyncio.current_task()
    except RuntimeError:
        task = None
    return task if task is not None else threading.get_ident()


_gates: dict[str, Gate] = {}
_gates_mutex = threading.Lock()


def gate_key(database: str | None) -> str | None:
    """The name under which connections to ``database`` share a gate: its real path, or a
    ``file:`` URI's path (a shared in-memory database); None for a private ``:memory:`` one."""
    if not database or database == ":memory:":
        return None
    if database.startswith("file:"):
        path = database[len("file:") :].split("?", 1)[0]
        return "file:" + path if "mode=memory" in database else os.path.realpath(path)
    return os.path.realpath(database)


def gate_for(database: str | None) -> Gate | None:
    """The process's gate for ``database`` (one per file), or None where there is nothing to share."""
    key = gate_key(database)
    if key is None:
        return None
    with _gates_mutex:
        gate = _gates.get(key)
        if gate is None:
            gate = _gates[key] = Gate()
        return gate


__all__ = ["Gate", "GateTimeout", "Held", "gate_for", "gate_key", "owner"]
