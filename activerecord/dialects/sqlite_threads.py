"""The threads async SQLite connections run their calls on: a few per database file, shared.

aiosqlite gives every connection a thread of its own. Under a service's load (W8: 100 tasks
over a pool of 10) the event loop is the bottleneck, and ten driver threads that each wake for
a call of tens of µs contend with it for the cores and the GIL: 4,000 involuntary context
switches per 5,000 operations, against about 50 with one thread. Here the connections to one
file hand their calls to that file's `Workers`:

- each connection's calls run in order, one at a time (its `Lane`), as on its own thread;
- one thread runs the calls of all connections while it keeps up;
- while calls wait behind it, a second one watches, and takes them when every running call has
  run for `STALLED` seconds (a new watcher then starts, up to a thread per connection): a call
  waiting in SQLite's busy handler for another process's lock, or a long statement, holds up
  the other connections' calls for no longer than that;
- a thread that has had nothing to do for `IDLE_EXIT` seconds ends (the last one when the
  file's last connection closes).

A sqlite3 connection thus runs on whichever thread is free, one call at a time, which is what
``check_same_thread=False`` is for (SQLAlchemy already passes it for files).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

#: Seconds every running call must have run before another thread takes waiting calls.
STALLED = 0.05
#: Seconds an idle thread waits for work before it ends (one stays while connections are open).
IDLE_EXIT = 10.0

_Call = tuple[Any, Callable[[], Any]]  # (an asyncio future or None, the call)


def _deliver(future: Any, ok: bool, value: Any) -> None:
    if not future.done():  # (a cancelled caller's future)
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)


def _hand_over(future: Any, ok: bool, value: Any) -> None:
    """Settle ``future`` with the outcome of a call, on its event loop (from a worker thread)."""
    # (a closed event loop refuses: nobody waits for the answer any more)
    with contextlib.suppress(RuntimeError):
        future.get_loop().call_soon_threadsafe(_deliver, future, ok, value)


class Pending:
    """A call put on a lane whose caller waits for it on its own thread first (`wait`, the GIL
    released meanwhile) and, if it has not ended by then, through an asyncio future (`later`).
    Its outcome is `ok` and `value` (the result, or the exception raised), and `seconds` is how
    long it ran on its worker thread."""

    __slots__ = ("_call", "_ended", "_future", "_mutex", "ok", "seconds", "value")

    def __init__(self, call: Callable[[], Any]) -> None:
        self._call = call
        self._ended = threading.Lock()
        self._ended.acquire()  # (released when the call has ended)
        self._mutex = threading.Lock()
        self._future: Any = None
        self.ok = False
        self.value: Any = None
        self.seconds = 0.0

    def run(self) -> None:
        """Run the call (on a worker thread) and tell its caller."""
        started = time.perf_counter()
        try:
            self.value = self._call()
            self.ok = True
        except BaseException as exc:  # handed to the caller
            self.value = exc
        self.seconds = time.perf_counter() - started
        with self._mutex:
            future, self._future = self._future, _ENDED
        self._ended.release()
        if future is not None:
            _hand_over(future, True, None)

    def wait(self, seconds: float) -> bool:
        """Wait up to ``seconds`` on this thread; whether the call has ended."""
        return self._ended.acquire(timeout=seconds)

    def later(self, loop: Any) -> Any:
        """A future of ``loop`` done once the call has ended, or None if it has already."""
        with self._mutex:
            if self._future is _ENDED:
                return None
            self._future = loop.create_future()
            return self._future


_ENDED = object()


class Lane:
    """One connection's calls; aiosqlite puts them here (``put_nowait``) instead of on a queue
    of its own thread."""

    __slots__ = ("calls", "closed", "queued", "workers")

    def __init__(self, workers: Workers) -> None:
        self.workers = workers
        self.calls: deque[_Call] = deque()
        #: Whether the lane is waiting in its workers' ready queue or running a call.
        self.queued = False
        self.closed = False

    def put_nowait(self, call: _Call) -> None:
        self.workers.submit(self, call)

    def close(self) -> None:
        """The connection is closed: its workers may end once no other connection needs them."""
        if not self.closed:
            self.closed = True
            self.workers.lane_closed()


class Workers:
    """The threads of one database file (see the module's docstring). Safe from any thread."""

    def __init__(self, name: str, on_empty: Callable[[Workers], None]) -> None:
        self.name = name
        self._on_empty = on_empty
        self._mutex = threading.Lock()
        self._ready: deque[Lane] = deque()
        #: Idle threads, each waiting on its own lock; the most recent takes the next call.
        self._idle: list[threading.Lock] = []
        #: When the call each running thread is in started.
        self._running: dict[int, float] = {}
        self._threads = 0
        self._lanes = 0
        #: Idle threads waiting with a limit of STALLED (there are calls waiting).
        self._watchers = 0
        #: Threads woken from idle that have not yet looked for work.
        self._waking = 0
        #: What the callers keep about each statement on this file (`sqlite_async`: its recent
        #: run times, to wait in place for the quick ones); it ends with the file's threads.
        self.recent: dict[str, Any] = {}

    # -- what connections call -----------------------------------------------------------------

    def lane(self) -> Lane:
        """A new connection's lane."""
        with self._mutex:
            self._lanes += 1
        return Lane(self)

    def submit(self, lane: Lane, call: _Call) -> None:
        with self._mutex:
            lane.calls.append(call)
            if lane.queued:
                return  # (it runs after the lane's calls before it)
            lane.queued = True
            self._ready.append(lane)
            if self._waking:
                return  # (a thread woken before is on its way: it takes the ready lanes in turn)
            if not self._running or self._stalled(time.monotonic()) or not self._watchers:
                # A thread to take the call now, or one to watch the running calls: it takes
                # the waiting ones if the running ones have not ended within STALLED.
                self._wake_one()

    def lane_closed(self) -> None:
        with self._mutex:
            self._lanes -= 1
            if self._lanes:
                return
            while self._idle:
                self._wake_one()  # each sees no lanes and ends
        self._on_empty(self)

    # -- the threads, under the mutex ----------------------------------------------------------

    def _stalled(self, now: float) -> bool:
        """Whether every running call has run for STALLED seconds or more."""
        return max(self._running.values()) <= now - STALLED

    def _wake_one(self) -> None:
        if self._idle:
            self._waking += 1
            self._idle.pop().release()
        elif self._threads < max(self._lanes, 1):  # (a thread per connection at most; one always)
            self._threads += 1
            self._waking += 1
            thread = threading.Thread(target=self._serve, name=f"activerecord-sqlite {self.name}", daemon=True)
            try:
                thread.start()
            except BaseException:
                self._threads -= 1
                self._waking -= 1
                raise

    def _take(self, me: int, now: float) -> Lane | None:
        if self._ready and (not self._running or self._stalled(now)):
            self._running[me] = now
            return self._ready.popleft()
        return None

    def _serve(self) -> None:
        me = threading.get_ident()
        wake = threading.Lock()
        wake.acquire()  # (held whenever this thread is not idle: a release wakes it)
        done: Lane | None = None  # the lane whose call this thread has just run
        watching = False
        waited = True  # (a new thread counts as woken)
        idle_since = time.monotonic()
        while True:
            # One section per turn: the lane just run is put back and the next one taken under
            # the same lock, so a call submitted meanwhile finds this thread still running and
            # does not wake another.
            with self._mutex:
                now = time.monotonic()
                if done is not None:
                    del self._running[me]
                    if done.calls:
                        self._ready.append(done)
                    else:
                        done.queued = False
                    done = None
                    idle_since = now
                if waited:
                    self._watchers -= watching
                    if wake in self._idle:
                        self._idle.remove(wake)  # (the wait timed out)
                    else:
                        self._waking -= 1
                        wake.acquire(blocking=False)  # (released, perhaps after the timeout)
                    waited = False
                lane = self._take(me, now)
                if lane is not None and self._ready and not (self._watchers or self._waking):
                    self._wake_one()  # (calls wait behind this one: someone must watch for a stall)
                if lane is None:
                    if not self._lanes or (self._threads > 1 and now - idle_since >= IDLE_EXIT):
                        self._threads -= 1
                        return
                    self._idle.append(wake)
                    # With calls waiting behind running ones, look again when they may have stalled.
                    watching = bool(self._ready)
                    self._watchers += watching
            if lane is None:
                if wake.acquire(timeout=STALLED if watching else IDLE_EXIT):
                    idle_since = time.monotonic()
                    wake.release()  # (taken back at the top, under the lock)
                waited = True
                continue
            self._run(lane)
            done = lane

    @staticmethod
    def _run(lane: Lane) -> None:
        future, call = lane.calls.popleft()  # (only the thread that took the lane takes from it)
        try:
            ok, value = True, call()
        except BaseException as exc:  # handed to the caller's future
            ok, value = False, exc
        if future is not None:
            _hand_over(future, ok, value)


_by_file: dict[str, Workers] = {}
_by_file_mutex = threading.Lock()


def _after_fork() -> None:
    # A child has none of its parent's threads: its new connections need workers of their own
    # (the parent's connections are not to be used in the child, as SQLite requires).
    global _by_file_mutex
    _by_file.clear()
    _by_file_mutex = threading.Lock()


os.register_at_fork(after_in_child=_after_fork)


def _forget(workers: Workers) -> None:
    with _by_file_mutex:
        if _by_file.get(workers.name) is workers:  # (not a newer one for the same file)
            del _by_file[workers.name]


def workers_for(key: str | None) -> Workers:
    """The workers of the database named ``key`` (a file's real path, see `sqlite_gate.gate_key`);
    a private in-memory database (None) gets workers of its own."""
    if key is None:
        return Workers(":memory:", lambda workers: None)
    with _by_file_mutex:
        workers = _by_file.get(key)
        if workers is None:
            workers = _by_file[key] = Workers(key, _forget)
        return workers


__all__ = ["IDLE_EXIT", "STALLED", "Lane", "Pending", "Workers", "workers_for"]
