"""64-bit, time-ordered unique ids made without coordination (for shard keys and the like).

Layout of a positive signed 64-bit integer (fits BIGINT everywhere)::

    0 | 41 bits: milliseconds since 2024-01-01 UTC | 10 bits: node | 12 bits: sequence

The 41-bit clock lasts until 2093. Within one generator ids strictly increase. The sequence of
each millisecond starts at a random value below 2048, so the low bits (which ``id % shards`` looks at) are
spread evenly even at low traffic. The node number tells processes apart: give each process its
own (0-1023) for a hard guarantee (`configure_ids`, or the ``ACTIVERECORD_ID_NODE`` environment
variable); the default is random, which makes a clash between two processes need the same node
number, the same millisecond and the same sequence value. A forked child never keeps its parent's
node number for the process-wide generator: it draws another one.
"""

from __future__ import annotations

import os
import secrets
import threading
import time
import weakref
from datetime import UTC, datetime

from ..errors import ConfigurationError

EPOCH_MS = 1_704_067_200_000  # 2024-01-01T00:00:00Z
NODE_BITS = 10
SEQUENCE_BITS = 12
MAX_NODE = (1 << NODE_BITS) - 1
_SEQUENCE_MASK = (1 << SEQUENCE_BITS) - 1
NODE_ENV_VAR = "ACTIVERECORD_ID_NODE"

# Every live generator, so that a forked child can give each a fresh lock and a new random node.
_generators: weakref.WeakSet[IdGenerator] = weakref.WeakSet()


class IdGenerator:
    """Makes unique, time-ordered 64-bit ids; thread-safe.

    ``node`` (0-1023) tells processes apart. Without one the node is random, and a process forked
    from this one draws a different random node for this generator; a given node is kept across
    fork, since the caller chose it.

    >>> ids = IdGenerator(node=7)
    >>> a, b = ids.next_id(), ids.next_id()
    >>> a < b
    True
    """

    def __init__(self, node: int | None = None) -> None:
        self._reseed_after_fork = node is None
        if node is None:
            node = _random_node()
        if not isinstance(node, int) or isinstance(node, bool) or not 0 <= node <= MAX_NODE:
            raise ValueError(f"node must be an int from 0 to {MAX_NODE}, not {node!r}")
        self.node = node
        self._lock = threading.Lock()
        self._last_ms = -1
        self._seq = 0
        _generators.add(self)

    def next_id(self) -> int:
        """A new id, larger than every id this generator made before."""
        with self._lock:
            now = _now_ms()
            if now < self._last_ms:
                # The clock stepped back: keep counting on the last millisecond instead of
                # risking a repeat.
                now = self._last_ms
            if now == self._last_ms:
                self._seq += 1
                if self._seq > _SEQUENCE_MASK:
                    # The sequence is used up for this millisecond: wait for the next one.
                    while now <= self._last_ms:
                        now = _now_ms()
                    self._start(now)
            else:
                self._start(now)
            return ((now - EPOCH_MS) << (NODE_BITS + SEQUENCE_BITS)) | (self.node << SEQUENCE_BITS) | self._seq

    def _start(self, now: int) -> None:
        self._last_ms = now
        # A random start in the lower half: the low bits vary, and at least 2048 ids fit in
        # the millisecond before the sequence runs out (it never wraps, so ids only grow).
        self._seq = secrets.randbelow((_SEQUENCE_MASK + 1) // 2)

    def _after_fork(self) -> None:
        # Another thread may have held the lock at fork time; in the child it would never be released.
        self._lock = threading.Lock()
        if self._reseed_after_fork:
            self.node = _random_node(other_than=self.node)


def _random_node(other_than: int | None = None) -> int:
    if other_than is None:
        return secrets.randbelow(MAX_NODE + 1)
    # Any node but the parent's: parent and child can then never clash.
    return (other_than + 1 + secrets.randbelow(MAX_NODE)) % (MAX_NODE + 1)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def id_timestamp(value: int) -> datetime:
    """When an id from `generate_id` was made (UTC, millisecond precision)."""
    ms = (value >> (NODE_BITS + SEQUENCE_BITS)) + EPOCH_MS
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def _node_from_env() -> int | None:
    raw = os.environ.get(NODE_ENV_VAR, "").strip()
    if not raw:
        return None
    try:
        node = int(raw)
    except ValueError:
        node = -1
    if not 0 <= node <= MAX_NODE:
        raise ConfigurationError(f"{NODE_ENV_VAR} must be an integer from 0 to {MAX_NODE}, not {raw!r}")
    return node


# Made on first use, not at import, so the environment variable may be set up to then.
_default: IdGenerator | None = None
_default_lock = threading.Lock()


def _process_generator(node: int | None) -> IdGenerator:
    generator = IdGenerator(node)
    # The node of the process-wide generator belongs to this process, given or not: a forked
    # child (a pre-forked worker) must not reuse it.
    generator._reseed_after_fork = True
    return generator


def configure_ids(*, node: int | None = None) -> None:
    """Set the node number (0-1023) of this process's `generate_id`; None draws a random one.

    Give every process that makes ids its own node for a hard uniqueness guarantee: at start-up,
    or in each pre-forked worker after the fork (e.g. gunicorn's ``post_fork`` hook), since a forked
    child otherwise draws a random node. The ``ACTIVERECORD_ID_NODE`` environment variable does
    the same for a process that does not call this. A bad node raises `ConfigurationError`.

    >>> configure_ids(node=3)
    """
    global _default
    if node is not None and (not isinstance(node, int) or isinstance(node, bool) or not 0 <= node <= MAX_NODE):
        raise ConfigurationError(f"configure_ids(node=...) takes an int from 0 to {MAX_NODE}, not {node!r}")
    with _default_lock:
        _default = _process_generator(node)


def _default_generator() -> IdGenerator:
    global _default
    with _default_lock:
        if _default is None:
            _default = _process_generator(_node_from_env())
        return _default


def generate_id() -> int:
    """A new 64-bit unique id from the process-wide generator.

    Its node comes from `configure_ids`, else from the ``ACTIVERECORD_ID_NODE`` environment
    variable, else it is random; a forked child draws a new random node.

    >>> user = User(id=generate_id(), name="ada")
    """
    generator = _default
    if generator is None:
        generator = _default_generator()
    return generator.next_id()


def _after_fork_in_child() -> None:
    global _default_lock
    _default_lock = threading.Lock()
    for generator in list(_generators):
        generator._after_fork()


if hasattr(os, "register_at_fork"):  # POSIX; elsewhere processes are spawned, never forked
    os.register_at_fork(after_in_child=_after_fork_in_child)
