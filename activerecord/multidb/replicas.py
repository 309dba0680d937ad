"""A connection at run time: its primary's engines, its replicas' engines and their health.

Reads that may use a replica ask `Cluster.read_order` for the candidates, connect to the first
that works, and check (at most every ``lag_check_interval`` seconds, or when this context has a
write the replica may not have yet) how far it lags. A replica that fails to connect or lags more
than ``max_lag`` is skipped for ``retry_after`` seconds; when none is usable, reads go to the
primary. Writes never reach this module: they always use the primary.
"""

from __future__ import annotations

import itertools
import random
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from ..dialects import backend_for
from ..engine.config import NodeConfig
from ..engine.engines import NodeEngines
from . import positions as _positions
from .topology import ClusterConfig

# Errors that mean "this node is unreachable", as opposed to an error in the caller's query.
CONNECT_ERRORS: tuple[type[BaseException], ...] = (DBAPIError, PoolTimeout, OSError, TimeoutError)


class ReplicaObserver(Protocol):
    """What instrumentation hears of replica choice (see `observe`)."""

    def watch(self, cluster: Cluster, order: list[Replica]) -> Iterable[Replica]:
        """Hand out ``order`` to one read; notice when the read runs out of replicas (falls back)."""

    def skipped(self, replica: Replica, reason: str) -> None:
        """``replica`` was passed over for a read: ``unreachable``, ``lag`` or ``read_your_writes``."""

    def chosen(self, replica: Replica, reason: str) -> None:
        """``replica`` serves a read: ``caught_up`` (it has this context's writes) or ``routing``."""


#: Set by instrumentation; None (the default) costs one comparison per decision.
observer: ReplicaObserver | None = None


@dataclass(frozen=True)
class Probe:
    """What a replica said about itself: seconds of lag, replayed position and whether it is a
    standby at all (None: unknown, on backends that cannot tell)."""

    lag: float | None
    lsn: int | None
    standby: bool | None = None


def probe(conn: Connection) -> Probe:
    """Measure a replica's lag and replay position on its own connection (where its backend can)."""
    status = backend_for(conn.dialect).replica_status(conn)
    if status is None:
        return Probe(None, None)
    return Probe(status.lag, status.position, status.standby)


class Replica:
    """One read node and what is known of its health (shared by every context)."""

    def __init__(self, engines: NodeEngines, name: str | None) -> None:
        self.engines = engines
        self.name = name
        self.weight = engines.node.weight
        self.down_until = 0.0
        self.checked_at = float("-inf")
        self.lag: float | None = None
        self.replayed: int = -1
        # Only a standby's replay position can be compared with its primary's WAL position.
        self.standby: bool | None = None

    def __repr__(self) -> str:
        return f"Replica({self.engines.node.safe_url!r})"

    @property
    def label(self) -> str:
        """The replica's name, or its URL with the password masked."""
        return self.name or self.engines.node.safe_url

    def mark_down(self, seconds: float, reason: str = "unreachable") -> None:
        """Skip this replica for ``seconds``; it is tried again after that."""
        self.down_until = time.monotonic() + seconds
        if observer is not None:
            observer.skipped(self, reason)

    def available(self, now: float) -> bool:
        """Whether the replica may be tried now."""
        return self.down_until <= now


class Cluster:
    """The engines and replica state of one connection."""

    def __init__(self, config: ClusterConfig, engines_for: Callable[[NodeConfig], NodeEngines] = NodeEngines) -> None:
        self.config = config
        self.primary = engines_for(config.primary)
        self.replicas = [Replica(engines_for(r.node), r.name) for r in config.replicas]
        self.options = config.options
        self._turn = itertools.count()
        self._lock = threading.Lock()

    @classmethod
    def read_only(cls, replica: Replica) -> Cluster:
        """A connection that is one named replica: reads only, on that node's own engines."""
        return cls(ClusterConfig(replica.engines.node, read_only=True), lambda _node: replica.engines)

    def __repr__(self) -> str:
        return f"Cluster({self.primary.node.safe_url!r}, replicas={len(self.replicas)})"

    @property
    def automatic(self) -> bool:
        """Whether reads outside a transaction go to replicas without being asked."""
        return self.options.routing == "automatic"

    def all_engines(self) -> list[NodeEngines]:
        """The primary's engines and every replica's."""
        return [self.primary, *(r.engines for r in self.replicas)]

    def read_order(self) -> Iterable[Replica]:
        """The replicas to try for one read, best first; those marked down are left out."""
        order = self._order()
        return order if observer is None else observer.watch(self, order)

    def _order(self) -> list[Replica]:
        now = time.monotonic()
        usable = [r for r in self.replicas if r.available(now)]
        if len(usable) < 2:
            return usable
        if self.options.selection == "weighted":
            # Weighted order without replacement (Efraimidis-Spirakis): the first pick follows
            # the weights, and the rest still give a fallback order.
            return sorted(usable, key=lambda r: random.random() ** (1.0 / r.weight), reverse=True)
        start = next(self._turn) % len(usable)
        return usable[start:] + usable[:start]

    def needs_probe(self, replica: Replica, name: str) -> bool:
        """Whether a read must measure ``replica`` before using it."""
        interval = self.options.lag_check_interval
        if self.options.max_lag is not None and time.monotonic() - replica.checked_at >= interval:
            return True
        wrote = self._pending(name)
        if wrote is None or wrote.lsn is None or replica.standby is False:
            return False
        return replica.replayed < wrote.lsn

    def _pending(self, name: str) -> _positions.Position | None:
        if not self.options.read_your_writes:
            return None
        return _positions.pending(name)

    def accept(self, replica: Replica, name: str, measured: Probe | None) -> bool:
        """Record a probe's result; tell whether ``replica`` may serve this read."""
        if measured is not None:
            with self._lock:
                replica.checked_at = time.monotonic()
                replica.lag = measured.lag
                replica.standby = measured.standby
                if measured.lsn is not None and measured.lsn > replica.replayed:
                    replica.replayed = measured.lsn
        max_lag = self.options.max_lag
        if max_lag is not None and replica.lag is not None and replica.lag > max_lag:
            replica.mark_down(self.options.retry_after, "lag")
            return False
        fit = self.caught_up(replica, name)
        if observer is not None:
            if not fit:
                observer.skipped(replica, "read_your_writes")
            else:
                observer.chosen(replica, "routing" if self._pending(name) is None else "caught_up")
        return fit

    def caught_up(self, replica: Replica, name: str) -> bool:
        """Whether ``replica`` has this context's own writes on ``name`` (read-your-own-writes)."""
        wrote = self._pending(name)
        if wrote is None:
            return True
        if wrote.lsn is not None and replica.standby:
            return replica.replayed >= wrote.lsn
        return time.time() >= wrote.at + self.options.replica_delay

    def records_positions(self) -> bool:
        """Whether a write here must be remembered for read-your-own-writes."""
        return bool(self.replicas) and self.options.read_your_writes
