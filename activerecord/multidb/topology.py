"""What one ``configure()`` entry describes: a single node, a primary with replicas, or a shard group.

Pure: the entries are validated and turned into frozen, comparable configs (so that a repeated
``configure()`` can tell a changed connection from an unchanged one); nothing connects here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..engine.config import POOL_KEYS, NodeConfig, check_pool_settings, parse_node
from ..errors import ConfigurationError

ROUTING_MODES = ("explicit", "automatic")
SELECTIONS = ("round_robin", "weighted")

# Settings of a replicated entry, beside its "write" and "read" nodes.
_REPLICA_OPTION_KEYS = frozenset(
    {
        "routing",
        "selection",
        "max_lag",
        "lag_check_interval",
        "retry_after",
        "read_your_writes",
        "replica_delay",
    }
)


@dataclass(frozen=True)
class ReplicaOptions:
    """How reads are spread over the replicas of one connection and when a replica is skipped.

    - ``routing``: ``"explicit"`` (reads go to the primary unless asked for a replica) or
      ``"automatic"`` (reads outside a transaction go to the replicas).
    - ``selection``: ``"round_robin"`` or ``"weighted"`` (by each node's ``weight``).
    - ``max_lag``: seconds a PostgreSQL replica may lag before it is skipped (None: no bound).
    - ``lag_check_interval``: how often, in seconds, a replica's lag is measured.
    - ``retry_after``: seconds a failed or lagging replica is left alone before it is tried again.
    - ``read_your_writes``: after a write, this context's reads avoid replicas that have not
      replayed it yet.
    - ``replica_delay``: where replay positions cannot be compared (not PostgreSQL), how many
      seconds after a write the replicas are assumed to have caught up.
    """

    routing: str = "explicit"
    selection: str = "round_robin"
    max_lag: float | None = None
    lag_check_interval: float = 1.0
    retry_after: float = 5.0
    read_your_writes: bool = True
    replica_delay: float = 1.0


@dataclass(frozen=True)
class ReplicaConfig:
    """One read node; ``name``, when given, makes it addressable with ``using(name)``."""

    node: NodeConfig
    name: str | None = None


@dataclass(frozen=True)
class ClusterConfig:
    """A connection: its primary and its replicas (none for a plain single-node connection)."""

    primary: NodeConfig
    replicas: tuple[ReplicaConfig, ...] = ()
    options: ReplicaOptions = ReplicaOptions()
    read_only: bool = False


@dataclass(frozen=True)
class GroupConfig:
    """A shard group: shard names in their configured order, each an ordinary connection."""

    shards: tuple[tuple[str, ClusterConfig], ...]

    @property
    def shard_names(self) -> tuple[str, ...]:
        """The shard names, in the order the configuration gave them."""
        return tuple(name for name, _ in self.shards)


EntryConfig = ClusterConfig | GroupConfig


def _number(name: str, key: str, value: Any, *, allow_none: bool = False) -> float | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ConfigurationError(f"connection {name!r}: {key!r} must be a non-negative number of seconds")
    return float(value)


def _options(name: str, raw: Mapping[str, Any]) -> ReplicaOptions:
    values: dict[str, Any] = {}
    if "routing" in raw:
        if raw["routing"] not in ROUTING_MODES:
            raise ConfigurationError(f"connection {name!r}: 'routing' must be one of {', '.join(ROUTING_MODES)}")
        values["routing"] = raw["routing"]
    if "selection" in raw:
        if raw["selection"] not in SELECTIONS:
            raise ConfigurationError(f"connection {name!r}: 'selection' must be one of {', '.join(SELECTIONS)}")
        values["selection"] = raw["selection"]
    if "max_lag" in raw:
        values["max_lag"] = _number(name, "max_lag", raw["max_lag"], allow_none=True)
    for key in ("lag_check_interval", "retry_after", "replica_delay"):
        if key in raw:
            values[key] = _number(name, key, raw[key])
    if "read_your_writes" in raw:
        if not isinstance(raw["read_your_writes"], bool):
            raise ConfigurationError(f"connection {name!r}: 'read_your_writes' must be True or False")
        values["read_your_writes"] = raw["read_your_writes"]
    return ReplicaOptions(**values)


def _replica_node(name: str, raw: Mapping[str, Any], where: str, shared: Mapping[str, Any]) -> NodeConfig:
    node = parse_node(name, raw, where=where, shared=shared)
    if "pool_pre_ping" not in node.engine_options:
        # A pooled connection to a replica that went away must fail at checkout, where the
        # router can still pick another node, not half-way through the caller's query.
        node = dataclasses.replace(node, engine_options={**node.engine_options, "pool_pre_ping": True})
    return node


def _shared_pool(where: str, raw: Mapping[str, Any], inherited: Mapping[str, Any]) -> dict[str, Any]:
    """The pool settings given beside a connection's nodes (over those of its shard group), checked."""
    return {**inherited, **check_pool_settings(f"{where} (every node)", raw)}


def _replicated(name: str, raw: Mapping[str, Any], where: str, inherited: Mapping[str, Any]) -> ClusterConfig:
    unknown = set(raw) - {"write", "read"} - _REPLICA_OPTION_KEYS - POOL_KEYS
    if unknown:
        raise ConfigurationError(
            f"{where}: unknown setting(s) {', '.join(sorted(unknown))} beside 'write'/'read'; "
            f"allowed: {', '.join(sorted(_REPLICA_OPTION_KEYS | POOL_KEYS))}"
        )
    shared = _shared_pool(where, raw, inherited)
    primary = parse_node(name, raw["write"], where=f"{where} (primary)", shared=shared)
    reads = raw.get("read", [])
    if isinstance(reads, Mapping):
        reads = [reads]
    if not isinstance(reads, Sequence) or isinstance(reads, (str, bytes)):
        raise ConfigurationError(f"connection {name!r}: 'read' must be a list of node settings")
    replicas = []
    for number, item in enumerate(reads, 1):
        if not isinstance(item, Mapping):
            raise ConfigurationError(f"connection {name!r}: read node {number} must be a mapping")
        settings = dict(item)
        alias = settings.pop("name", None)
        if alias is not None and (not isinstance(alias, str) or not alias):
            raise ConfigurationError(f"connection {name!r}: read node {number}: 'name' must be a non-empty string")
        label = f"replica {alias!r}" if alias else f"read node {number}"
        node = _replica_node(alias or f"{name}[read {number}]", settings, f"{where} ({label})", shared)
        if node.backend != primary.backend:
            raise ConfigurationError(
                f"connection {name!r}: read node {number} is {node.backend}, the primary is {primary.backend}"
            )
        replicas.append(ReplicaConfig(node, alias))
    return ClusterConfig(primary, tuple(replicas), _options(name, raw))


def parse_cluster(
    name: str, raw: Mapping[str, Any], *, group: str | None = None, shared: Mapping[str, Any] | None = None
) -> ClusterConfig:
    """A single node (``{"driver": ...}``) or a primary with replicas (``{"write": ..., "read": [...]}``).

    Pool settings (`POOL_KEYS`) given beside ``write`` and ``read`` apply to every node of the
    connection; ``shared`` are those of its shard group (``group``), below the connection's own.
    """
    where = f"connection {name!r}" if group is None else f"shard group {group!r}, shard {name!r}"
    if not isinstance(raw, Mapping):
        raise ConfigurationError(f"{where}: settings must be a mapping, not {type(raw).__name__}")
    if "write" in raw:
        return _replicated(name, raw, where, shared or {})
    if "read" in raw:
        raise ConfigurationError(f"{where}: 'read' nodes need a 'write' node")
    return ClusterConfig(parse_node(name, raw, where=where, shared=shared))


def parse_entry(name: str, raw: Mapping[str, Any]) -> EntryConfig:
    """Validate one ``configure()`` entry."""
    if not isinstance(name, str) or not name:
        raise ConfigurationError(f"connection names must be non-empty strings, not {name!r}")
    if isinstance(raw, Mapping) and "shards" in raw:
        unknown = set(raw) - {"shards"} - POOL_KEYS
        if unknown:
            raise ConfigurationError(
                f"shard group {name!r}: unknown setting(s) {', '.join(sorted(unknown))} beside 'shards'; "
                f"allowed: {', '.join(sorted(POOL_KEYS))}"
            )
        shared = check_pool_settings(f"shard group {name!r} (every shard)", raw)
        shards = raw["shards"]
        if not isinstance(shards, Mapping) or not shards:
            raise ConfigurationError(f"shard group {name!r}: 'shards' must map shard names to settings")
        parsed = []
        for shard, settings in shards.items():
            if not isinstance(shard, str) or not shard or shard == name:
                raise ConfigurationError(f"shard group {name!r}: bad shard name {shard!r}")
            parsed.append((shard, parse_cluster(shard, settings, group=name, shared=shared)))
        return GroupConfig(tuple(parsed))
    return parse_cluster(name, raw)


def _canonical_node(node: NodeConfig) -> NodeConfig:
    if node.memory_uri is None:
        return node
    # Each parse names a private in-memory database "activerecord_<connection>_<counter>"; two
    # parses of the same settings for the same connection describe the same database, and must
    # compare equal so a repeated configure() keeps its data. The connection name stays: two
    # connections never share an in-memory database.
    same = node.memory_uri.split("?", 1)[0].rsplit("_", 1)[0]
    return dataclasses.replace(
        node,
        sync_url=node.sync_url.set(database=same),
        async_url=node.async_url.set(database=same),
        memory_uri=same,
    )


def _canonical_cluster(config: ClusterConfig) -> ClusterConfig:
    return dataclasses.replace(
        config,
        primary=_canonical_node(config.primary),
        replicas=tuple(dataclasses.replace(r, node=_canonical_node(r.node)) for r in config.replicas),
    )


def same_node(a: NodeConfig, b: NodeConfig) -> bool:
    """Whether two parsed nodes describe the same database with the same settings."""
    return _canonical_node(a) == _canonical_node(b)


def same_entry(a: EntryConfig | None, b: EntryConfig) -> bool:
    """Whether two parsed ``configure()`` entries are the same (so nothing needs to change)."""
    if isinstance(a, GroupConfig) and isinstance(b, GroupConfig):
        return len(a.shards) == len(b.shards) and all(
            x[0] == y[0] and _canonical_cluster(x[1]) == _canonical_cluster(y[1])
            for x, y in zip(a.shards, b.shards, strict=True)
        )
    if isinstance(a, ClusterConfig) and isinstance(b, ClusterConfig):
        return _canonical_cluster(a) == _canonical_cluster(b)
    return False
