"""Engines for one node: a sync `Engine` and an `AsyncEngine`, created lazily.

What each backend needs of its engines (dialects of activerecord's own, driver options) comes
from `config.engine_args`: this module knows no backend.
"""

from __future__ import annotations

import sqlite3
import threading
import weakref
from collections.abc import Callable

from sqlalchemy import Engine, create_engine
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from ..dialects import backend_for
from . import faults as _faults
from .config import NodeConfig, engine_args

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
        sync, async_ = engines._sync, engines._async
        found.extend((engines, e) for e in (sync, async_.sync_engine if async_ else None) if e is not None)
    return found


def _announce(engines: NodeEngines, engine: Engine) -> None:
    for callback in list(_created):
        callback(engines, engine)


class NodeEngines:
    """The engines of one node, made on first use and disposed together."""

    def __init__(self, node: NodeConfig) -> None:
        self.node = node
        self._sync: Engine | None = None
        self._async: AsyncEngine | None = None
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
                    engine = create_engine(url, **options)
                    _faults.install(engine, backend_for(self.node.backend).classify_error)
                    self._sync = engine
                    if _created:
                        _announce(self, engine)
                    if self.on_create is not None:
                        self.on_create(self)
                engine = self._sync
        return engine

    @property
    def async_(self) -> AsyncEngine:
        """The async engine (created on first access)."""
        engine = self._async
        if engine is None:
            with self._lock:
                if self._async is None:
                    self._keep_memory_db()
                    url, options = engine_args(self.node, self.node.async_url)
                    engine = create_async_engine(url, **options)
                    _faults.install(engine.sync_engine, backend_for(self.node.backend).classify_error)
                    self._async = engine
                    if _created:
                        _announce(self, engine.sync_engine)
                    if self.on_create is not None:
                        self.on_create(self)
                engine = self._async
        return engine

    def dispose(self) -> None:
        """Close the sync pool; drop the async pool without awaiting (use `adispose` when you can)."""
        if self._sync is not None:
            self._sync.dispose()
            self._sync = None
        if self._async is not None:
            # Closing async connections needs their event loop; outside one, drop them.
            self._async.sync_engine.dispose(close=False)
            self._async = None
        self._close_keeper()

    async def adispose(self) -> None:
        """Close both pools, awaiting the async connections' close."""
        if self._async is not None:
            await self._async.dispose()
            self._async = None
        if self._sync is not None:
            self._sync.dispose()
            self._sync = None
        self._close_keeper()

    def _close_keeper(self) -> None:
        if self._keeper is not None:
            self._keeper.close()
            self._keeper = None


def _checked_out(engine: Engine | None) -> int:
    return 0 if engine is None else int(engine.pool.checkedout())  # type: ignore[attr-defined]


def in_use(engines: NodeEngines) -> int:
    """How many connections of ``engines`` (sync and async pools) are checked out right now."""
    async_engine = engines._async
    return _checked_out(engines._sync) + _checked_out(async_engine.sync_engine if async_engine else None)


def dispose_sync_part(engines: NodeEngines) -> None:
    """Close the sync pool only (the async pool needs an event loop to close its connections)."""
    if engines._sync is not None:
        engines._sync.dispose()
        engines._sync = None


def is_disposed(engines: NodeEngines) -> bool:
    """Whether neither engine is open."""
    return engines._sync is None and engines._async is None
