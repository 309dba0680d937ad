"""PNG heat map of each contender's ratio to its SQLAlchemy Core baseline, one panel per backend."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: CI and servers have no display

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import LogNorm

from bench.contenders import BY_NAME, CONTENDERS
from bench.results import RunResult, ratios
from bench.workloads import WORKLOAD_KEYS

# Ratios outside 1/8..8 share the end colours; the printed number still tells the truth.
_SPAN = 8.0


def plot(results: list[RunResult], path: Path) -> None:
    """Write the chart; backends without a single successful contender are left out."""
    backends = [
        b
        for b in dict.fromkeys(r.backend for r in results)
        if any(r.backend == b and r.status == "ok" for r in results)
    ]
    if not backends:
        return
    order = [entry.name for entry in CONTENDERS]
    names = [n for n in order if any(r.contender == n and r.status == "ok" for r in results)]
    fig, axes = plt.subplots(
        len(backends),
        1,
        figsize=(11, 0.45 * len(names) * len(backends) + 1.6 * len(backends)),
        squeeze=False,
    )
    norm = LogNorm(vmin=1 / _SPAN, vmax=_SPAN)
    image = None
    for ax, backend in zip(axes[:, 0], backends, strict=True):
        grid = np.full((len(names), len(WORKLOAD_KEYS)), np.nan)
        for result in results:
            if result.backend == backend and result.contender in names:
                factors = ratios(result, results)
                for col, key in enumerate(WORKLOAD_KEYS):
                    if key in factors:
                        grid[names.index(result.contender), col] = factors[key]
        image = ax.imshow(grid, cmap="RdYlGn_r", norm=norm, aspect="auto")
        for (row, col), value in np.ndenumerate(grid):
            if not math.isnan(value):
                ax.text(col, row, f"{value:.2f}", ha="center", va="center", fontsize=8)
        ax.set_xticks(range(len(WORKLOAD_KEYS)), WORKLOAD_KEYS)
        ax.set_yticks(range(len(names)), [BY_NAME[n].label for n in names], fontsize=8)
        ax.set_title(
            f"{backend}: median time / SQLAlchemy Core (sync rows) or async Core (async rows); lower is faster",
            fontsize=10,
        )
        # A rule between the sync block and the async block: their baselines differ.
        sync_rows = sum(1 for n in names if BY_NAME[n].mode == "sync")
        if 0 < sync_rows < len(names):
            ax.axhline(sync_rows - 0.5, color="black", linewidth=1.5)
    if image is not None:
        bar = fig.colorbar(image, ax=axes[:, 0].tolist(), shrink=0.6, label="ratio (log scale)")
        ticks = [1 / 8, 1 / 4, 1 / 2, 1, 2, 4, 8]
        bar.set_ticks(ticks, labels=["1/8", "1/4", "1/2", "1", "2", "4", "8"])
        bar.minorticks_off()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
