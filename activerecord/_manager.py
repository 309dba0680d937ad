"""The registry of named connections: configuration in, engines out.

``ConnectionManager`` is the process-wide registry; `ConnectionRegistry` is its class, for tests
or tools that want a private one.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.ext.asyncio import AsyncEngine

from ._config import NodeConfig, parse_node
from ._engines import NodeEngines
from .errors import ConfigurationError


class ConnectionRegistry:
    """Named connections, each a database reachable by a sync and an async engine.

    >>> ConnectionManager.configure({"default": {"driver": "sqlite", "database": "app.db"}})
    >>> ConnectionManager.engine("default")  # a sqlalchemy.Engine, created on first use
    """

    def __init__(self) -> None:
        self._nodes: dict[str, NodeEngines] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        items = ", ".join(f"{name}={n.node.safe_url!r}" for name, n in self._nodes.items())
        return f"ConnectionManager({items})"

    def configure(self, connections: Mapping[str, Mapping[str, Any]]) -> None:
        """Add or replace named connections.

        Everything is validated before anything changes: a bad entry raises `ConfigurationError`
        and leaves every connection as it was. A replaced connection's engines are disposed.
        """
        if not isinstance(connections, Mapping):
            raise ConfigurationError("configure() takes a mapping of connection names to settings")
        parsed: dict[str, NodeConfig] = {}
        for name, raw in connections.items():
            if not isinstance(name, str) or not name:
                raise ConfigurationError(f"connection names must be non-empty strings, not {name!r}")
            parsed[name] = parse_node(name, raw)
        with self._lock:
            replaced = [self._nodes[n] for n in parsed if n in self._nodes and self._nodes[n].node != parsed[n]]
            for name, node in parsed.items():
                current = self._nodes.get(name)
                if current is None or current.node != node:
                    self._nodes[name] = NodeEngines(node)
        for old in replaced:
            old.dispose()

    def _get(self, name: str) -> NodeEngines:
        try:
            return self._nodes[name]
        except KeyError:
            configured = ", ".join(sorted(self._nodes)) or "none"
            raise ConfigurationError(
                f"no connection named {name!r} (configured: {configured}); "
                "call ConnectionManager.configure() first"
            ) from None

    def node(self, name: str) -> NodeEngines:
        """The engines of connection ``name``; raises `ConfigurationError` for an unknown name."""
        return self._get(name)

    def engine(self, name: str = "default") -> Engine:
        """The sync `sqlalchemy.Engine` of connection ``name``."""
        return self._get(name).sync

    def async_engine(self, name: str = "default") -> AsyncEngine:
        """The `AsyncEngine` of connection ``name``."""
        return self._get(name).async_

    def backend(self, name: str = "default") -> str:
        """``"sqlite"``, ``"postgresql"`` or ``"mysql"``."""
        return self._get(name).node.backend

    def names(self) -> list[str]:
        """The configured connection names."""
        return list(self._nodes)

    def is_configured(self, name: str) -> bool:
        """Whether a connection named ``name`` exists."""
        return name in self._nodes

    def remove(self, name: str) -> None:
        """Forget connection ``name`` and dispose its engines."""
        with self._lock:
            node = self._get(name)
            del self._nodes[name]
        node.dispose()

    async def aremove(self, name: str) -> None:
        """`remove`, awaiting the async pool's close."""
        with self._lock:
            node = self._get(name)
            del self._nodes[name]
        await node.adispose()

    def dispose(self) -> None:
        """Close every pool; connections stay configured and reconnect on next use."""
        for node in list(self._nodes.values()):
            node.dispose()

    async def adispose(self) -> None:
        """Close every pool, awaiting the async connections' close."""
        for node in list(self._nodes.values()):
            await node.adispose()

    def clear(self) -> None:
        """Dispose and forget every connection."""
        with self._lock:
            nodes = list(self._nodes.values())
            self._nodes.clear()
        for node in nodes:
            node.dispose()

    async def aclear(self) -> None:
        """`clear`, awaiting the async pools' close."""
        with self._lock:
            nodes = list(self._nodes.values())
            self._nodes.clear()
        for node in nodes:
            await node.adispose()


ConnectionManager = ConnectionRegistry()
"""The process-wide connection registry."""
