"""Engines for one node: a sync `Engine`, and an `AsyncEngine` per event loop, created lazily.

An async driver's connections belong to the event loop that opened them (their sockets are
registered with it), so an async pool must never serve a second loop: each running loop gets an
engine of its own. When a loop ends under `asyncio.run` (or `asyncio.Runner`, pytest's loops),
its remaining tasks are cancelled before it closes; a small guard task per engine uses that
moment to close the engine's connections on their own loop. An engine whose loop was closed
some other way is dropped without touching the dead loop.

What each backend needs of its engines (dialects of activerecord's own, driver options) comes
from `config.engine_args`: this module knows no backend.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import URL, Engine, create_engine
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from ..dialects import backend_for
from . import cancel as _cancel
from . import checkout as _checkout
from . import faults as _faults
from . import pools as _pools
from . import timeouts as _timeouts
from .config import NodeConfig, engine_args

log = logging.getLogger("activerecord.engine")

#: Called with each new engine (an `AsyncEngine` contributes its ``sync_engine``) right after it
#: is made; filled by instrumentation above this layer, empty (and free) otherwise.
EngineCallback = Callable[["NodeEngines", Engine], None]
_created: list[EngineCallback] = []
_instances: weakref.WeakSet[NodeEngines] = weakref.WeakSet()


def on_engine_created(callback: EngineCallback) -> None:
    """Call ``callback(node_engines, engine)`` for every engine created from now on."""
    _created.append(callback)


def remove_engine_created(callback: EngineCallback) -> None:
    """Stop calling ``callback`` (no error when it was not registered)."""
    if callback in _created:
        _created.remove(callback)


def existing_engines() -> list[tuple[NodeEngines, Engine]]:
    """Every engine created so far and still open (an `AsyncEngine` as its ``sync_engine``)."""
    found: list[tuple[NodeEngines, Engine]] = []
    for engines in list(_instances):
        if engines._sync is not None:
            found.append((engines, engines._sync))
        found.extend((engines, e.sync_engine) for e in engines.async_engines())
    return found


def _announce(engines: NodeEngines, engine: Engine) -> None:
    for callback in list(_created):
        callback(engines, engine)


@dataclass
class _LoopEngine:
    """The async engine of one event loop and the task that closes it when the loop ends."""

    engine: AsyncEngine
    loop: asyncio.AbstractEventLoop | None
    guard: asyncio.Task[None] | None = None
    # Set when `dispose` handed the engine to its guard to close on the loop.
    closing: bool = False


class NodeEngines:
    """The engines of one node, made on first use and disposed together."""

    def __init__(self, node: NodeConfig) -> None:
        self.node = node
        self._sync: Engine | None = None
        # Keyed weakly by loop; entries of closed loops are also swept on every new engine,
        # since a pooled connection refers to its loop and would keep the key alive.
        self._async: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopEngine] = weakref.WeakKeyDictionary()
        # The engine made for callers outside any running loop (inspection: URL, dialect).
        self._loopless: AsyncEngine | None = None
        # The last loop served and its engine: the hot path, one identity check.
        self._last: tuple[asyncio.AbstractEventLoop | None, AsyncEngine] | None = None
        self._lock = threading.Lock()
        self._keeper: sqlite3.Connection | None = None
        # Set by the registry once these engines are replaced: an operation that looked the
        # node up just before the swap may still open an engine here, which must then be
        # disposed again once idle.
        self.on_create: Callable[[NodeEngines], None] | None = None
        _instances.add(self)

    def __repr__(self) -> str:
        return f"NodeEngines({self.node.safe_url!r})"

    def _keep_memory_db(self) -> None:
        if self.node.memory_uri is not None and self._keeper is None:
            self._keeper = sqlite3.connect(self.node.memory_uri, uri=True, check_same_thread=False)

    @property
    def sync(self) -> Engine:
        """The sync engine (created on first access)."""
        engine = self._sync
        if engine is None:
            with self._lock:
                if self._sync is None:
                    self._keep_memory_db()
                    url, options = engine_args(self.node, self.node.sync_url)
                    engine = create_engine(url, **_fair(url, options, is_async=False))
                    self._instrument(engine, is_async=False)
                    self._sync = engine
                    if self.on_create is not None:
                        self.on_create(self)
                engine = self._sync
        return engine

    @property
    def async_(self) -> AsyncEngine:
        """The async engine of the running event loop (created on its first access there).

        Outside a running loop: an engine for inspection, which no loop's work uses.
        """
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        last = self._last
        if last is not None and last[0] is loop:
            return last[1]
        engine = self._async_for(loop)
        self._last = (loop, engine)
        return engine

    def _async_for(self, loop: asyncio.AbstractEventLoop | None) -> AsyncEngine:
        with self._lock:
            if loop is None:
                if self._loopless is None:
                    self._loopless = self._create_async()
                return self._loopless
            entry = self._async.get(loop)
            if entry is not None:
                return entry.engine
            self._drop_closed_loops()
            entry = _LoopEngine(self._create_async(), loop)
            self._async[loop] = entry
            entry.guard = loop.create_task(self._close_with_loop(entry), name=f"activerecord-pool-guard {self!r}")
            # Destroyed while pending only when its loop was closed without cancelling its tasks:
            # the engine was then dropped (`_drop_closed_loops`), nothing is left to report.
            entry.guard._log_destroy_pending = False  # type: ignore[attr-defined]
        if self.on_create is not None:
            self.on_create(self)
        return entry.engine

    def _create_async(self) -> AsyncEngine:
        self._keep_memory_db()
        url, options = engine_args(self.node, self.node.async_url)
        engine = create_async_engine(url, **_fair(url, options, is_async=True))
        # (Before `faults`: the cancellation handler records a connect's arguments before the
        # connect itself is made.)
        _cancel.install(engine.sync_engine, backend_for(self.node.backend))
        self._instrument(engine.sync_engine, is_async=True)
        return engine

    def _instrument(self, engine: Engine, *, is_async: bool) -> None:
        _faults.install(engine, backend_for(self.node.backend).classify_error, wraps_connect_errors=is_async)
        _timeouts.install(engine)
        _checkout.install(engine, self.node.checkout_warning, self.node.safe_url)
        if _created:
            _announce(self, engine)

    async def _close_with_loop(self, entry: _LoopEngine) -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            # The loop is ending (asyncio.run cancels what is left), or `dispose` asked.
            with self._lock:
                if entry.loop is None or self._async.get(entry.loop) is not entry:
                    if not entry.closing:
                        return  # an explicit `adispose` closes it itself
                else:
                    del self._async[entry.loop]
                self._forget_last(entry.engine)
            await _close_quietly(entry.engine)

    def _forget_last(self, engine: AsyncEngine) -> None:
        if self._last is not None and self._last[1] is engine:
            self._last = None

    def _drop_closed_loops(self) -> None:
        for loop, entry in list(self._async.items()):
            if loop.is_closed():
                del self._async[loop]
                self._forget_last(entry.engine)
                _drop(entry.engine)

    def async_engines(self) -> list[AsyncEngine]:
        """The async engines open now, one per event loop (and one for callers outside any)."""
        with self._lock:
            found = [entry.engine for entry in self._async.values()]
        return found if self._loopless is None else [*found, self._loopless]

    def _take_async(self) -> tuple[list[_LoopEngine], AsyncEngine | None]:
        with self._lock:
            entries = list(self._async.values())
            self._async.clear()
            loopless, self._loopless = self._loopless, None
            self._last = None
        return entries, loopless

    def dispose(self) -> None:
        """Close the sync pool; each async pool is closed on its own loop, or dropped if that
        loop is gone (use `adispose` to wait for the running loop's pool to close)."""
        if self._sync is not None:
            self._sync.dispose()
            self._sync = None
        entries, loopless = self._take_async()
        for entry in entries:
            _close_on_its_loop(entry)
        if loopless is not None:
            _drop(loopless)
        self._close_keeper()

    async def adispose(self) -> None:
        """Close every pool, awaiting the close of the running loop's async connections."""
        entries, loopless = self._take_async()
        running = asyncio.get_running_loop()
        for entry in entries:
            if entry.loop is running:
                if entry.guard is not None:
                    entry.guard.cancel()
                await _close_quietly(entry.engine)
            else:
                _close_on_its_loop(entry)
        if loopless is not None:
            await _close_quietly(loopless)
        if self._sync is not None:
            self._sync.dispose()
            self._sync = None
        self._close_keeper()

    def _close_keeper(self) -> None:
        if self._keeper is not None:
            self._keeper.close()
            self._keeper = None


def _fair(url: URL, options: dict[str, Any], is_async: bool) -> dict[str, Any]:
    """``options`` with the pool that hands released connections to waiting callers first
    (`pools`), where SQLAlchemy would make a queue pool and no pool class is given."""
    if "poolclass" in options or "pool" in options:
        return options
    fair = _pools.fair_pool_class(url, is_async)
    return options if fair is None else {**options, "poolclass": fair}


def _drop(engine: AsyncEngine) -> None:
    # Closing an async connection needs its loop; where there is none, forget the connections.
    engine.sync_engine.dispose(close=False)


async def _close_quietly(engine: AsyncEngine) -> None:
    try:
        await engine.dispose()
    except Exception as exc:  # the server may be gone: the pool is discarded all the same
        log.debug("closing an async pool failed: %s: %s", type(exc).__name__, exc)
        _drop(engine)


def _close_on_its_loop(entry: _LoopEngine) -> None:
    """Have ``entry``'s guard close its engine on its own loop; drop it if that loop is closed."""
    loop, guard = entry.loop, entry.guard
    if loop is None or guard is None or loop.is_closed():
        _drop(entry.engine)
        return
    entry.closing = True
    with contextlib.suppress(RuntimeError):  # closed meanwhile
        loop.call_soon_threadsafe(guard.cancel)
        return
    _drop(entry.engine)


def _checked_out(engine: Engine | None) -> int:
    return 0 if engine is None else int(engine.pool.checkedout())  # type: ignore[attr-defined]


def in_use(engines: NodeEngines) -> int:
    """How many connections of ``engines`` (sync and async pools) are checked out right now."""
    return _checked_out(engines._sync) + sum(_checked_out(e.sync_engine) for e in engines.async_engines())


def dispose_sync_part(engines: NodeEngines) -> None:
    """Close the sync pool only (the async pool needs an event loop to close its connections)."""
    if engines._sync is not None:
        engines._sync.dispose()
        engines._sync = None


def is_disposed(engines: NodeEngines) -> bool:
    """Whether no engine is open."""
    return engines._sync is None and not engines.async_engines()
