"""Health of the configured databases: every primary, replica and shard probed at once, each within
a time limit, summed up as up, degraded or down.

``ConnectionManager.health()`` / ``ahealth()`` call `check` / `acheck` (installed into the
connection registry when ``activerecord`` is imported, since this layer sits above it). A probe
checks a connection out of the node's own pool (the one the service's queries use, so a full or
broken pool shows), asks the backend for the node's replication status where it has one, else
runs ``SELECT 1``. Nothing here changes routing: a probe observes, it never marks a replica down.

Rules: a node that answered is ``up`` (a replica lagging more than its connection's ``max_lag`` is
``degraded``); the report is ``down`` when any primary (of a connection or of a shard) is down or
when no node answered, ``degraded`` when any other node is not up, else ``up``.
"""

from __future__ import annotations

import asyncio
import enum
import json
import re
import threading
import time
from concurrent.futures import Future
from concurrent.futures import wait as wait_futures
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import Pool, QueuePool
from sqlalchemy.util import greenlet_spawn

from ..connections import manager as _manager
from ..connections.manager import ConnectionManager, ConnectionRegistry
from ..dialects import backend_for
from ..engine.engines import NodeEngines
from ..errors import ConfigurationError
from ..multidb.replicas import Cluster

#: Seconds each probe (and so the whole call, as the probes run at once) may take by default.
DEFAULT_TIMEOUT = 2.0
#: Sync probes running at once, at most, in all and per node.
MAX_PROBE_THREADS = 32
PROBES_PER_NODE = 3
PRIMARY = "primary"
REPLICA = "replica"
_PING = text("SELECT 1")


class HealthStatus(enum.StrEnum):
    """``up``, ``degraded`` or ``down``; a `str`, so it serializes as its value."""

    UP = "up"
    DEGRADED = "degraded"
    DOWN = "down"

    @property
    def exit_code(self) -> int:
        """0, 1 or 2: what ``activerecord health`` exits with."""
        return _EXIT_CODES[self]


_EXIT_CODES = {HealthStatus.UP: 0, HealthStatus.DEGRADED: 1, HealthStatus.DOWN: 2}


@dataclass(frozen=True)
class PoolUsage:
    """One connection pool of a node (``mode``: ``"sync"`` or ``"async"``), as it was just before
    the probe: its configured ``size``, connections ``checked_out`` by the service, ``idle`` ones,
    and ``overflow`` connections opened beyond ``size``."""

    mode: str
    size: int
    checked_out: int
    idle: int
    overflow: int


@dataclass(frozen=True)
class NodeHealth:
    """What one probe found.

    ``connection`` is the connection (or shard) the node serves, ``group`` its shard group if
    any, ``name`` the node's name in the report (the connection's name for its primary, the
    replica's configured name or ``<connection>/replica-<n>``), ``role`` ``"primary"`` or
    ``"replica"``, ``address`` its URL with the password masked. ``latency`` is the probe's
    seconds (None when it failed); ``error`` the failure's text. ``lag`` (seconds behind the
    primary) and ``position`` (replayed, or for a primary written, WAL position) are None where
    the backend cannot tell. ``pools`` are the node's open pools.
    """

    connection: str
    group: str | None
    name: str
    role: str
    address: str
    status: HealthStatus
    latency: float | None
    error: str | None
    lag: float | None
    position: int | None
    pools: tuple[PoolUsage, ...]


@dataclass(frozen=True)
class HealthReport:
    """The overall ``status``, each node's `NodeHealth`, and the seconds the check took."""

    status: HealthStatus
    nodes: tuple[NodeHealth, ...]
    duration: float

    @property
    def ready(self) -> bool:
        """Whether the service can serve: every primary answered (replicas may be down)."""
        return self.status is not HealthStatus.DOWN

    def to_dict(self) -> dict[str, Any]:
        """The report as plain data (statuses as strings), ready for JSON."""
        return asdict(self)

    def to_json(self) -> str:
        """The report as JSON text."""
        return json.dumps(self.to_dict())

    def to_text(self) -> str:
        """The report for people: the status, then one line per node."""
        lines = [f"{self.status} ({self.duration * 1000:.1f} ms)"]
        for node in self.nodes:
            found = f"{node.latency * 1000:.1f} ms" if node.latency is not None else node.error or ""
            if node.lag is not None:
                found += f", lag {node.lag:.3f} s"
            for pool in node.pools:
                found += f"; {pool.mode} pool {pool.checked_out}/{pool.size} in use"
            lines.append(f"  {node.status:<8} {node.role:<7} {node.name}  {node.address}  {found}")
        return "\n".join(lines)


# -- what to probe -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Target:
    connection: str
    group: str | None
    name: str
    role: str
    engines: NodeEngines
    max_lag: float | None


def _cluster_targets(connection: str, group: str | None, cluster: Cluster) -> list[_Target]:
    found = [_Target(connection, group, connection, PRIMARY, cluster.primary, None)]
    for number, replica in enumerate(cluster.replicas, 1):
        name = replica.name or f"{connection}/replica-{number}"
        found.append(_Target(connection, group, name, REPLICA, replica.engines, cluster.options.max_lag))
    return found


def _entry_targets(registry: ConnectionRegistry, name: str) -> list[_Target]:
    if registry.is_shard_group(name):
        return [t for shard in registry.shards(name) for t in _cluster_targets(shard, name, registry.cluster(shard))]
    return _cluster_targets(name, None, registry.cluster(name))


def _targets(registry: ConnectionRegistry, name: str | None) -> list[_Target]:
    if name is None:
        return [t for entry in registry.names() for t in _entry_targets(registry, entry)]
    if not registry.is_configured(name):
        registry.cluster(name)  # raises the registry's own "no connection named ..." error
    everything = [t for entry in registry.names() for t in _entry_targets(registry, entry)]
    # A connection, a shard group or one shard: all of its nodes; a named replica: that one.
    return [t for t in everything if name in (t.connection, t.group) or (t.role == REPLICA and t.name == name)]


def _check_timeout(timeout: float | None) -> float:
    if timeout is None:
        return DEFAULT_TIMEOUT
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        raise ConfigurationError(f"health timeout must be a positive number of seconds, not {timeout!r}")
    return float(timeout)


# -- one probe, written once for both modes ----------------------------------------------------


@dataclass(frozen=True)
class _Answer:
    latency: float
    lag: float | None
    position: int | None


def _measure(conn: Connection) -> tuple[float | None, int | None]:
    status = backend_for(conn.dialect).replica_status(conn)
    if status is None:
        conn.execute(_PING).scalar()
        return None, None
    return status.lag, status.position


def _probe(engine: Engine) -> _Answer:
    """Check out a connection of ``engine`` and measure the node (runs in a greenlet for async)."""
    started = time.perf_counter()
    try:
        with engine.connect() as conn:
            lag, position = _measure(conn)
    except DBAPIError as exc:
        # A pooled connection that the server dropped earlier fails on its first use and the
        # pool is refreshed: a new connection tells whether the node is down now.
        if not exc.connection_invalidated:
            raise
        with engine.connect() as conn:
            lag, position = _measure(conn)
    return _Answer(time.perf_counter() - started, lag, position)


def _pools(engines: NodeEngines) -> tuple[PoolUsage, ...]:
    # The engines as they are: reading them must not create a pool the service never used.
    # One async pool per event loop that used the node.
    opened = [("sync", engines._sync), *(("async", e.sync_engine) for e in engines.async_engines())]
    return tuple(usage for mode, engine in opened if engine is not None and (usage := _usage(mode, engine.pool)))


def _usage(mode: str, pool: Pool) -> PoolUsage | None:
    if not isinstance(pool, QueuePool):  # (SQLite's in-memory pools hold one connection per thread)
        return None
    # overflow() counts down from -size until the pool is full, then up through the overflow.
    return PoolUsage(mode, pool.size(), pool.checkedout(), pool.checkedin(), max(0, pool.overflow()))


_SPACE = re.compile(r"\s+")


def _describe(error: BaseException, engines: NodeEngines) -> str:
    if isinstance(error, _TimedOut):
        return str(error)
    cause = error.orig if isinstance(error, DBAPIError) and error.orig is not None else error
    # The driver's own message, without SQLAlchemy's statement and background-link lines.
    text_ = _SPACE.sub(" ", f"{type(cause).__name__}: {cause}").strip()
    for url in (engines.node.sync_url, engines.node.async_url):
        if url.password:
            text_ = text_.replace(str(url.password), "***")
    return text_[:500]


def _node(target: _Target, pools: tuple[PoolUsage, ...], outcome: _Answer | BaseException) -> NodeHealth:
    address = target.engines.node.safe_url
    if isinstance(outcome, BaseException):
        error = _describe(outcome, target.engines)
        return NodeHealth(
            target.connection, target.group, target.name, target.role, address,
            HealthStatus.DOWN, None, error, None, None, pools,
        )  # fmt: skip
    lag = outcome.lag if target.role == REPLICA else None  # (a primary lags behind nothing)
    lagging = target.max_lag is not None and lag is not None and lag > target.max_lag
    status = HealthStatus.DEGRADED if lagging else HealthStatus.UP
    return NodeHealth(
        target.connection, target.group, target.name, target.role, address,
        status, outcome.latency, None, lag, outcome.position, pools,
    )  # fmt: skip


def _overall(nodes: list[NodeHealth]) -> HealthStatus:
    if any(n.role == PRIMARY and n.status is HealthStatus.DOWN for n in nodes):
        return HealthStatus.DOWN
    if nodes and all(n.status is HealthStatus.DOWN for n in nodes):
        return HealthStatus.DOWN
    if any(n.status is not HealthStatus.UP for n in nodes):
        return HealthStatus.DEGRADED
    return HealthStatus.UP


class _TimedOut(TimeoutError):
    def __init__(self, timeout: float, full: PoolUsage | None) -> None:
        # A probe that may have waited for a pooled connection is not a silent host: say so.
        busy = f" (the {full.mode} pool had {full.checked_out} connections checked out, none idle)" if full else ""
        super().__init__(f"timed out: no answer within {timeout:g} s{busy}")


def _full(pools: tuple[PoolUsage, ...], mode: str) -> PoolUsage | None:
    """The pool of ``mode`` if it had no connection to spare when the probe began."""
    for pool in pools:
        if pool.mode == mode and pool.idle == 0 and pool.checked_out >= pool.size:
            return pool
    return None


# -- sync: probes on daemon threads -------------------------------------------------------------


class _ProbeThreads:
    """Runs sync probes, each on a daemon thread: at most `PROBES_PER_NODE` at once per engine
    and `MAX_PROBE_THREADS` in all.

    Not a `ThreadPoolExecutor`: its threads are joined when the interpreter exits, so one probe
    stuck on a blackholed host would hang the process's exit, and a fixed pool would queue
    healthy nodes behind stuck probes. A host that never answers holds a few threads, however
    often health is asked: past the per-node bound a call joins the newest probe still running.
    A new probe is started while fewer are running, so a node whose earlier connection hangs
    on a half-open link is still seen to be up again once new connections work.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: dict[Engine, list[Future[_Answer]]] = {}
        self._count = 0

    def submit(self, engine: Engine) -> Future[_Answer]:
        future: Future[_Answer] = Future()
        with self._lock:
            running = self._running.setdefault(engine, [])
            if len(running) >= PROBES_PER_NODE:
                return running[-1]
            if self._count >= MAX_PROBE_THREADS:
                future.set_exception(RuntimeError(f"{MAX_PROBE_THREADS} probes are still waiting for their nodes"))
                return future
            running.append(future)
            self._count += 1
        threading.Thread(target=self._run, args=(engine, future), name="activerecord-health", daemon=True).start()
        return future

    def _run(self, engine: Engine, future: Future[_Answer]) -> None:
        try:
            future.set_result(_probe(engine))
        except BaseException as exc:  # handed to the caller through the future
            future.set_exception(exc)
        finally:
            with self._lock:
                self._count -= 1
                running = self._running[engine]
                running.remove(future)
                if not running:
                    del self._running[engine]

    def running(self) -> int:
        """Probe threads still running (those of hosts that never answered, once calls return)."""
        return self._count


_threads = _ProbeThreads()


def check(
    name: str | None = None, *, timeout: float | None = None, registry: ConnectionRegistry | None = None
) -> HealthReport:
    """Probe every node of connection ``name`` (None: of every connection) at once, each on its
    sync pool, and return within ``timeout`` seconds (default `DEFAULT_TIMEOUT`)."""
    limit = _check_timeout(timeout)
    targets = _targets(registry or ConnectionManager, name)
    started = time.monotonic()
    engines = [t.engines.sync for t in targets]  # (created first, so that their pools show)
    pools = [_pools(t.engines) for t in targets]
    futures = [_threads.submit(engine) for engine in engines]
    wait_futures(futures, timeout=limit)
    nodes = [
        _node(t, p, (f.exception() or f.result()) if f.done() else _TimedOut(limit, _full(p, "sync")))
        for t, p, f in zip(targets, pools, futures, strict=True)
    ]
    return HealthReport(_overall(nodes), tuple(nodes), time.monotonic() - started)


# -- async: probes as tasks ---------------------------------------------------------------------


def _consume(task: asyncio.Task[_Answer]) -> None:
    if not task.cancelled():
        task.exception()  # retrieved, so asyncio does not log it as never retrieved


async def acheck(
    name: str | None = None, *, timeout: float | None = None, registry: ConnectionRegistry | None = None
) -> HealthReport:
    """`check` on the async pools: one task per node, all awaited together."""
    limit = _check_timeout(timeout)
    targets = _targets(registry or ConnectionManager, name)
    started = time.monotonic()
    engines = [t.engines.async_.sync_engine for t in targets]  # (created first, so that their pools show)
    pools = [_pools(t.engines) for t in targets]
    tasks = [asyncio.ensure_future(greenlet_spawn(_probe, engine)) for engine in engines]
    _done, pending = await asyncio.wait(tasks, timeout=limit)
    for task in pending:
        # Not awaited: a driver that is slow to give up must not hold the answer past the limit.
        task.cancel()
        task.add_done_callback(_consume)
    nodes = [
        _node(t, p, _TimedOut(limit, _full(p, "async")) if task in pending else (task.exception() or task.result()))
        for t, p, task in zip(targets, pools, tasks, strict=True)
    ]
    return HealthReport(_overall(nodes), tuple(nodes), time.monotonic() - started)


def _registry_check(registry: ConnectionRegistry, name: str | None, timeout: float | None) -> HealthReport:
    return check(name, timeout=timeout, registry=registry)


async def _registry_acheck(registry: ConnectionRegistry, name: str | None, timeout: float | None) -> HealthReport:
    return await acheck(name, timeout=timeout, registry=registry)


_manager.install_health_probes(_registry_check, _registry_acheck)

__all__ = [
    "DEFAULT_TIMEOUT",
    "HealthReport",
    "HealthStatus",
    "NodeHealth",
    "PoolUsage",
    "acheck",
    "check",
]
