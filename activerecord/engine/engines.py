"""Engines for one node: a sync `Engine` and an `AsyncEngine`, created lazily, with backend fixes.

The SQLite fixes follow SQLAlchemy's documented recipe: the stdlib driver's own transaction
handling breaks SAVEPOINT, so the driver is put in autocommit mode and BEGIN is emitted by us.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy import URL, Engine, create_engine, event
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from ..dialects import mysql as _mysql
from ..dialects import sqlite_async as _aiosqlite
from ..dialects.faults import CLASSIFIERS
from . import faults as _faults
from .config import NodeConfig


def _sqlite_setup(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    # The recipe emits BEGIN from a "begin" connection event; but once an engine has any
    # connection event, SQLAlchemy dispatches its execute events around every statement
    # (measured: ~3 µs per statement). The dialect's own hook for starting a transaction
    # (a no-op by default, "connect" being a pool event) does the same job at no such cost.
    engine.dialect.do_begin = _emit_begin  # type: ignore[method-assign]


def _emit_begin(dbapi_connection: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("BEGIN")
    finally:
        cursor.close()


def _engine_options(node: NodeConfig, url: URL) -> tuple[dict[str, Any], Callable[[Dialect], None] | None]:
    """The options of an engine for ``url``, with the driver settings of `_mysql` and
    `_aiosqlite`; and what to set up on its dialect, if anything (see `_mysql`)."""
    driver = url.get_driver_name()
    if node.backend == "mysql":
        return _mysql.engine_options(node.engine_options, driver)
    options = dict(node.engine_options)
    if driver == "aiosqlite":
        options["module"] = _aiosqlite.dbapi()  # one thread trip per statement
    return options, None


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
                    options, set_up = _engine_options(self.node, self.node.sync_url)
                    engine = create_engine(self.node.sync_url, **options)
                    _faults.install(engine, CLASSIFIERS[self.node.backend])
                    if set_up is not None:
                        set_up(engine.dialect)
                    if self.node.backend == "sqlite":
                        _sqlite_setup(engine)
                    self._sync = engine
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
                    options, set_up = _engine_options(self.node, self.node.async_url)
                    engine = create_async_engine(self.node.async_url, **options)
                    _faults.install(engine.sync_engine, CLASSIFIERS[self.node.backend])
                    if set_up is not None:
                        set_up(engine.sync_engine.dialect)
                    if self.node.backend == "sqlite":
                        _sqlite_setup(engine.sync_engine)
                    self._async = engine
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
