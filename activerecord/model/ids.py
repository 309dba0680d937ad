"""64-bit, time-ordered unique ids made without coordination (for shard keys and the like).

Layout of a positive signed 64-bit integer (fits BIGINT everywhere)::

    0 | 41 bits: milliseconds since 2024-01-01 UTC | 10 bits: node | 12 bits: sequence

The 41-bit clock lasts until 2093. Within one generator ids strictly increase. The sequence of
each millisecond starts at a random value below 2048, so the low bits (which ``id % shards`` looks at) are
spread evenly even at low traffic. The node number tells processes apart: give each process its
own (0-1023) for a hard guarantee; the default is random, which makes a clash between two
processes need the same node number, the same millisecond and the same sequence value.
"""

from __future__ import annotations

import secrets
import threading
import time
from datetime import UTC, datetime

EPOCH_MS = 1_704_067_200_000  # 2024-01-01T00:00:00Z
NODE_BITS = 10
SEQUENCE_BITS = 12
MAX_NODE = (1 << NODE_BITS) - 1
_SEQUENCE_MASK = (1 << SEQUENCE_BITS) - 1


class IdGenerator:
    """Makes unique, time-ordered 64-bit ids; thread-safe.

    >>> ids = IdGenerator(node=7)
    >>> a, b = ids.next_id(), ids.next_id()
    >>> a < b
    True
    """

    def __init__(self, node: int | None = None) -> None:
        if node is None:
            node = secrets.randbelow(MAX_NODE + 1)
        if not isinstance(node, int) or isinstance(node, bool) or not 0 <= node <= MAX_NODE:
            raise ValueError(f"node must be an int from 0 to {MAX_NODE}, not {node!r}")
        self.node = node
        self._lock = threading.Lock()
        self._last_ms = -1
        self._seq = 0

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


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def id_timestamp(value: int) -> datetime:
    """When an id from `generate_id` was made (UTC, millisecond precision)."""
    ms = (value >> (NODE_BITS + SEQUENCE_BITS)) + EPOCH_MS
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


_default = IdGenerator()


def generate_id() -> int:
    """A new 64-bit unique id from the process-wide generator (random node number).

    >>> user = User(id=generate_id(), name="ada")
    """
    return _default.next_id()
