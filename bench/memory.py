"""Peak-memory probes for the streaming workload.

``TracedBatches`` (tracemalloc) gives the peak of Python-heap allocations made while
streaming: exact and independent of what the allocator had cached, but slow, so it runs on
an extra untimed pass, and it does not see memory that C libraries take with malloc.

``PeakMemory`` is cheap and sees everything the process holds: on Linux the kernel's
resident-set high-water mark can be reset (``/proc/self/clear_refs``), so the peak of one
workload is measured without tracing overhead, including memory that C drivers allocate
outside Python. Elsewhere ``ru_maxrss`` is used, which only shows growth beyond the
process's earlier peak.
"""

from __future__ import annotations

import resource
import sys
import tracemalloc
from pathlib import Path
from typing import Self

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def _status_kib(field: str) -> int:
    for line in _STATUS.read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise LookupError(field)


class PeakMemory:
    """Context manager: ``peak_mib`` is the RSS peak above the RSS at entry."""

    def __init__(self) -> None:
        self.peak_mib = 0.0
        self._start_kib = 0
        self._resettable = sys.platform == "linux" and _CLEAR_REFS.exists()

    def __enter__(self) -> Self:
        if self._resettable:
            try:
                _CLEAR_REFS.write_text("5")  # "5" resets VmHWM to the current RSS
                self._start_kib = _status_kib("VmRSS")
                return self
            except OSError:
                self._resettable = False
        self._start_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return self

    def __exit__(self, *exc: object) -> None:
        peak = _status_kib("VmHWM") if self._resettable else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        self.peak_mib = max(peak - self._start_kib, 0) / 1024


class TracedBatches:
    """tracemalloc peak over the first ``limit`` batches of a stream; use as ``on_batch``.

    Tracing slows Python code about fivefold, so it stops after a few batches; that is
    enough to see what matters: a library that buffers the whole result has fetched it
    before handing out the first batch, and a streaming one has reached its steady state
    (the batch being built while the previous one is still referenced). Memory that grows
    with every batch shows in the RSS figure, which covers the whole timed run.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.batches = 0
        self.peak_mib = 0.0

    def __enter__(self) -> Self:
        tracemalloc.start()
        return self

    def __call__(self, size: int) -> None:
        self.batches += 1
        if self.batches == self.limit:
            self._stop()

    def __exit__(self, *exc: object) -> None:
        self._stop()

    def _stop(self) -> None:
        if tracemalloc.is_tracing():
            self.peak_mib = tracemalloc.get_traced_memory()[1] / 2**20
            tracemalloc.stop()
