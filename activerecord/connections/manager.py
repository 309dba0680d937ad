"""The registry of named connections: configuration in, engines out.

``ConnectionManager`` is the process-wide registry. `ConnectionRegistry` is its class; it is not
public: models, queries and transactions always go through ``ConnectionManager``, so a second
instance only serves to check configuration in isolation (the tests do).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, NoReturn

from sqlalchemy import Engine
from sqlalchemy.ext.asyncio import AsyncEngine

from ..engine.config import NodeConfig
from ..engine.engines import NodeEngines, dispose_sync_part, in_use
from ..errors import ConfigurationError
from ..multidb import positions as _positions
from ..multidb.replicas import Cluster
from ..multidb.routing import READING, RoutingScope
from ..multidb.topology import ClusterConfig, EntryConfig, GroupConfig, parse_entry, same_entry, same_node

if TYPE_CHECKING:
    from ..ops.health import HealthReport


class ConnectionRegistry:
    """Named connections: single databases, primaries with read replicas, and shard groups.

    >>> ConnectionManager.configure({"default": {"driver": "sqlite", "database": "app.db"}})
    >>> ConnectionManager.engine("default")  # a sqlalchemy.Engine, created on first use

    ``configure()`` may run again at any time (service discovery): a changed connection swaps to
    new engines at once, transactions already open finish on the old ones, and the old pools are
    disposed as soon as none of their connections is in use.
    """

    def __init__(self) -> None:
        # Top-level entries as configured, and every name an operation can address: plain and
        # replicated connections, each shard of a group, and named replicas.
        self._entries: dict[str, EntryConfig] = {}
        self._owner: dict[str, str] = {}
        self._clusters: dict[str, Cluster] = {}
        self._groups: dict[str, tuple[str, ...]] = {}
        self._retired: list[NodeEngines] = []
        self._lock = threading.RLock()

    def __repr__(self) -> str:
        items = ", ".join(f"{name}={c.primary.node.safe_url!r}" for name, c in self._clusters.items())
        return f"ConnectionManager({items})"

    # -- configuration ------------------------------------------------------------------------

    def configure(self, connections: Mapping[str, Mapping[str, Any]]) -> None:
        """Add or replace named connections.

        An entry is a node (``{"driver": ..., "host": ...}`` or ``{"url": ...}``), a primary with
        replicas (``{"write": {...}, "read": [{...}, ...]}`` plus routing options), or a shard
        group (``{"shards": {"shard_0": {...}, ...}}``). Everything is validated before anything
        changes: a bad entry raises `ConfigurationError` and leaves every connection as it was.
        """
        if not isinstance(connections, Mapping):
            raise ConfigurationError("configure() takes a mapping of connection names to settings")
        parsed = {name: parse_entry(name, raw) for name, raw in connections.items()}
        with self._lock:
            owner = {n: o for n, o in self._owner.items() if o not in parsed}
            for name, entry in parsed.items():
                for address in _addresses(name, entry):
                    if address in owner:
                        raise ConfigurationError(
                            f"connection name {address!r} is used twice (by {owner[address]!r} and {name!r})"
                        )
                    owner[address] = name
            for name, entry in parsed.items():
                if not same_entry(self._entries.get(name), entry):
                    self._install(name, entry)
        self._sweep()

    def _install(self, name: str, entry: EntryConfig) -> None:
        old = self._drop(name)
        reusable = {id(e): e for e in old}

        def engines_for(node: NodeConfig) -> NodeEngines:
            for key, engines in list(reusable.items()):
                if same_node(engines.node, node):
                    del reusable[key]
                    return engines
            return NodeEngines(node)

        def cluster_for(cname: str, config: ClusterConfig) -> None:
            cluster = Cluster(config, engines_for)
            self._clusters[cname] = cluster
            self._owner[cname] = name
            for replica in cluster.replicas:
                if replica.name is not None:
                    self._clusters[replica.name] = Cluster.read_only(replica)
                    self._owner[replica.name] = name

        if isinstance(entry, GroupConfig):
            for shard, config in entry.shards:
                cluster_for(shard, config)
            self._groups[name] = entry.shard_names
            self._owner[name] = name
        else:
            cluster_for(name, entry)
        self._entries[name] = entry
        self._retire(reusable.values())

    def _retire(self, engines: Iterable[NodeEngines]) -> None:
        for node in engines:
            node.on_create = self._revived
            if node not in self._retired:
                self._retired.append(node)

    def _revived(self, engines: NodeEngines) -> None:
        with self._lock:
            if engines not in self._retired:
                self._retired.append(engines)

    def _drop(self, name: str) -> list[NodeEngines]:
        """Forget entry ``name``; return its engines (the caller retires or reuses them)."""
        self._entries.pop(name, None)
        self._groups.pop(name, None)
        engines: dict[int, NodeEngines] = {}
        for address in [a for a, o in self._owner.items() if o == name]:
            del self._owner[address]
            cluster = self._clusters.pop(address, None)
            if cluster is not None:
                engines.update((id(e), e) for e in cluster.all_engines())
        return list(engines.values())

    def remove(self, name: str) -> None:
        """Forget connection (or shard group) ``name``; its pools are disposed once idle."""
        with self._lock:
            if name not in self._entries:
                self._unknown(name)
            self._retire(self._drop(name))
        self._sweep()

    async def aremove(self, name: str) -> None:
        """`remove`, awaiting the async pools' close."""
        with self._lock:
            if name not in self._entries:
                self._unknown(name)
            self._retire(self._drop(name))
        await self.asweep()

    def _sweep(self) -> None:
        """Dispose the retired engines that no connection uses any more (sync pools only)."""
        if not self._retired:
            return
        with self._lock:
            for engines in list(self._retired):
                if in_use(engines) == 0:
                    if not engines.async_engines():
                        engines.dispose()
                        self._retired.remove(engines)
                    else:
                        dispose_sync_part(engines)

    async def asweep(self) -> None:
        """Dispose every idle retired engine, awaiting the async pools' close."""
        if not self._retired:
            return
        with self._lock:
            idle = [e for e in self._retired if in_use(e) == 0]
            for engines in idle:
                self._retired.remove(engines)
        for engines in idle:
            await engines.adispose()

    def retired_count(self) -> int:
        """How many replaced nodes still wait for their last connection to come back."""
        return len(self._retired)

    # -- lookup -------------------------------------------------------------------------------

    def _unknown(self, name: str) -> NoReturn:
        configured = ", ".join(sorted(self._entries)) or "none"
        raise ConfigurationError(
            f"no connection named {name!r} (configured: {configured}); call ConnectionManager.configure() first"
        )

    def cluster(self, name: str) -> Cluster:
        """The primary, replicas and routing options of connection ``name``."""
        try:
            return self._clusters[name]
        except KeyError:
            if name in self._groups:
                raise ConfigurationError(
                    f"{name!r} is a shard group: pick a shard with using(), let the model's shard key "
                    "choose one, or ask for on_all_shards()"
                ) from None
            self._unknown(name)

    def _get(self, name: str) -> NodeEngines:
        return self.cluster(name).primary

    def node(self, name: str) -> NodeEngines:
        """The primary engines of connection ``name``; raises `ConfigurationError` for an unknown name."""
        return self._get(name)

    def engine(self, name: str = "default") -> Engine:
        """The sync `sqlalchemy.Engine` of connection ``name`` (its primary)."""
        return self._get(name).sync

    def async_engine(self, name: str = "default") -> AsyncEngine:
        """The `AsyncEngine` of connection ``name`` (its primary)."""
        return self._get(name).async_

    def replica_engines(self, name: str) -> list[Engine]:
        """The sync engines of the read replicas of connection ``name``, in configured order."""
        return [r.engines.sync for r in self.cluster(name).replicas]

    def backend(self, name: str = "default") -> str:
        """``"sqlite"``, ``"postgresql"`` or ``"mysql"``."""
        if name in self._groups:
            return self.backend(self._groups[name][0])
        return self._get(name).node.backend

    def names(self) -> list[str]:
        """The configured connection (and shard group) names, as given to `configure`."""
        return list(self._entries)

    def is_configured(self, name: str) -> bool:
        """Whether ``name`` is a configured connection, shard, named replica or shard group."""
        return name in self._clusters or name in self._groups

    def is_shard_group(self, name: str) -> bool:
        """Whether ``name`` is a shard group."""
        return name in self._groups

    def shards(self, group: str) -> list[str]:
        """The shard names of ``group``, in configured order."""
        try:
            return list(self._groups[group])
        except KeyError:
            if group in self._clusters:
                raise ConfigurationError(f"{group!r} is a connection, not a shard group") from None
            self._unknown(group)

    def primary_nodes(self, name: str) -> list[tuple[str, NodeEngines]]:
        """(name, primary engines) for each database a schema change of ``name`` must reach.

        One pair for a connection (its primary, when it has read replicas), one per shard, in
        configured order, for a shard group; replicas never appear: they replay their primary.
        """
        if name in self._groups:
            return [(shard, self.cluster(shard).primary) for shard in self._groups[name]]
        cluster = self.cluster(name)
        if cluster.config.read_only:
            raise ConfigurationError(f"{name!r} is a read replica: schema changes run on its primary")
        return [(name, cluster.primary)]

    def primaries(self, name: str) -> list[tuple[str, Engine]]:
        """(name, primary sync engine) for each database a migration of ``name`` must reach.

        One pair for a connection, one per shard for a shard group; replicas never appear.
        """
        return [(label, node.sync) for label, node in self.primary_nodes(name)]

    # -- routing scopes and write positions -----------------------------------------------------

    def connected_to(
        self, name: str | None = None, *, role: str = READING, prevent_writes: bool = False
    ) -> RoutingScope:
        """A ``with``/``async with`` block in which connection ``name`` (None: every connection)
        is used in ``role``: ``"reading"`` sends reads to the replicas and refuses writes,
        ``"writing"`` sends everything to the primary."""
        return RoutingScope(name, role, prevent_writes or role == READING)

    def prevent_writes(self, name: str | None = None) -> RoutingScope:
        """A ``with``/``async with`` block in which any write (to ``name``, or to every
        connection) raises `ReadOnlyError`; reads are routed as usual."""
        return RoutingScope(name, None, True)

    def export_write_position(self) -> str:
        """A token for the writes this context made on replicated connections ('' if none).

        Hand it to another service; after `import_write_position` there, its reads avoid the
        replicas that have not replayed these writes yet.
        """
        return _positions.export_token()

    def import_write_position(self, token: str) -> None:
        """Adopt the write positions of a token from `export_write_position`."""
        _positions.import_token(token)

    def forget_write_positions(self, name: str | None = None) -> None:
        """Stop routing this context's reads by its earlier writes (on ``name``, or all)."""
        _positions.forget(name)

    # -- health -------------------------------------------------------------------------------

    def health(self, name: str | None = None, *, timeout: float | None = None) -> HealthReport:
        """Probe every primary, replica and shard of connection ``name`` (None: of every
        connection) at once and report each node and the overall status: ``up``, ``degraded`` (a
        replica down or lagging) or ``down`` (a primary down). Returns within ``timeout`` seconds
        (default 2) even when a host does not answer. docs/operations.md#health."""
        return _probes()[0](self, name, timeout)

    async def ahealth(self, name: str | None = None, *, timeout: float | None = None) -> HealthReport:
        """`health`, probing the async pools."""
        return await _probes()[1](self, name, timeout)

    # -- start-up ------------------------------------------------------------------------------

    def _nodes_of(self, name: str | None) -> list[NodeEngines]:
        if name is None:
            return self._all_engines()
        if name in self._groups:
            nodes: dict[int, NodeEngines] = {}
            for shard in self._groups[name]:
                nodes.update((id(e), e) for e in self.cluster(shard).all_engines())
            return list(nodes.values())
        return self.cluster(name).all_engines()

    def connect(self, name: str | None = None) -> None:
        """Open the sync pools now: one connection to every node (primaries and replicas) of
        connection ``name``, or of every connection, proving each reachable.

        A service calls it at start-up so that its first requests do not wait on connection
        setup, and so that a node that is down is found before traffic arrives: its
        `sqlalchemy.exc.OperationalError` is raised here. Nodes are tried one after another.
        """
        for node in self._nodes_of(name):
            with node.sync.connect():
                pass  # checked out and returned: the pool now holds one open connection

    async def aconnect(self, name: str | None = None) -> None:
        """`connect` for the async pools of the running event loop, every node at once; the
        first node's error is raised once every attempt has ended."""
        nodes = self._nodes_of(name)

        async def open_one(node: NodeEngines) -> None:
            async with node.async_.connect():
                pass

        outcomes = await asyncio.gather(*(open_one(node) for node in nodes), return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome

    # -- disposal -----------------------------------------------------------------------------

    def _all_engines(self) -> list[NodeEngines]:
        seen: dict[int, NodeEngines] = {}
        for cluster in self._clusters.values():
            seen.update((id(e), e) for e in cluster.all_engines())
        return list(seen.values())

    def dispose(self) -> None:
        """Close every pool; connections stay configured and reconnect on next use."""
        with self._lock:
            retired, self._retired = self._retired, []
        for node in [*self._all_engines(), *retired]:
            node.dispose()

    async def adispose(self) -> None:
        """Close every pool, awaiting the async connections' close."""
        with self._lock:
            retired, self._retired = self._retired, []
        for node in [*self._all_engines(), *retired]:
            await node.adispose()

    def _forget_all(self) -> list[NodeEngines]:
        with self._lock:
            nodes = [*self._all_engines(), *self._retired]
            self._entries.clear()
            self._owner.clear()
            self._clusters.clear()
            self._groups.clear()
            self._retired = []
        return nodes

    def clear(self) -> None:
        """Dispose and forget every connection."""
        for node in self._forget_all():
            node.dispose()

    async def aclear(self) -> None:
        """`clear`, awaiting the async pools' close."""
        for node in self._forget_all():
            await node.adispose()


def _addresses(name: str, entry: EntryConfig) -> list[str]:
    clusters = entry.shards if isinstance(entry, GroupConfig) else ((name, entry),)
    found = [name] if isinstance(entry, GroupConfig) else []
    for cname, config in clusters:
        found.append(cname)
        found.extend(r.name for r in config.replicas if r.name is not None)
    return found


# The probes live in activerecord.ops.health, a layer above this one (it observes the layers
# below); importing activerecord installs them.
_HealthProbe = Callable[[ConnectionRegistry, "str | None", "float | None"], "HealthReport"]
_AsyncHealthProbe = Callable[[ConnectionRegistry, "str | None", "float | None"], "Awaitable[HealthReport]"]
_health_probes: tuple[_HealthProbe, _AsyncHealthProbe] | None = None


def install_health_probes(probe: _HealthProbe, aprobe: _AsyncHealthProbe) -> None:
    """Make ``health()`` / ``ahealth()`` run ``probe`` / ``aprobe``."""
    global _health_probes
    _health_probes = (probe, aprobe)


def _probes() -> tuple[_HealthProbe, _AsyncHealthProbe]:
    if _health_probes is None:  # (only while activerecord itself is still being imported)
        raise RuntimeError("the health probes are installed when activerecord is imported")
    return _health_probes


ConnectionManager = ConnectionRegistry()
"""The process-wide connection registry."""
