"""Search progress figure (paper, Figure 2a/b): every evaluation's score and the best so far.

Drawn from values: each run's label and search log, read by the driver
(:meth:`mbnas.commands.common.runfolder.RunFolder.read_search_log`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.ticker import MaxNLocator

from mbnas.io import atomic_write
from mbnas.reporting.figures import save_format

#: The narrowest Dice range the progress axis shows: auto-scaling 0.0041-0.0052 made noise
#: look like a climb.
MIN_DICE_RANGE = 0.05


def dice_range(limits: tuple[float, float], span: float = MIN_DICE_RANGE
               ) -> tuple[float, float]:
    """``limits`` widened about their middle to at least ``span``, kept within [0, 1]."""
    low, high = limits
    if high - low >= span:
        return low, high
    middle = (low + high) / 2
    low = min(max(0.0, middle - span / 2), 1.0 - span)
    return low, low + span


def plot_search_progress(runs: Sequence[tuple[str, Sequence[Mapping[str, Any]]]],
                         out_prefix: str | Path) -> list[Path]:
    """Plot the runs on one figure; write ``out_prefix``.png and .svg.

    Args:
        runs: (label, search log entries) of each run.
        out_prefix: The figure's path without suffix.

    Failed evaluations (no score) are drawn as crosses at the bottom of the axis, options
    ``--fidelity`` dropped before the full protocol as ticks there, and the start of every
    restart of local search as a dotted vertical line.
    """
    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    for i, (label, log) in enumerate(runs):
        colour = f"C{i}"
        x = [e["index"] + 1 for e in log if e.get("score") is not None]
        y = [e["score"] for e in log if e.get("score") is not None]
        ax.scatter(x, y, s=12, alpha=0.5, color=colour)
        # each score's spread: standard error over folds x seeds (absent from old logs)
        spread = [(e["index"] + 1, e["score"], e["se"]) for e in log
                  if e.get("score") is not None and e.get("se") is not None]
        if spread:
            ax.errorbar([s[0] for s in spread], [s[1] for s in spread],
                        yerr=[s[2] for s in spread], fmt="none", ecolor=colour, alpha=0.4,
                        capsize=2, label=f"{label}: ± standard error" if i == 0 else None)
        best, running = [], float("-inf")
        for e in log:
            if e.get("score") is not None:
                running = max(running, e["score"])
            best.append(running if running > float("-inf") else None)
        xs = [e["index"] + 1 for e, b in zip(log, best) if b is not None]
        ax.step(xs, [b for b in best if b is not None], where="post", color=colour,
                label=label)
        # A restart of local search (after a local optimum): a dotted line at its start.
        starts = [e for e in log if e.get("restart") and e.get("variable") is None]
        for k, start in enumerate(starts):
            ax.axvline(start["index"] + 1, color=colour, linestyle=":", alpha=0.6,
                       label=f"{label}: restarts" if k == 0 else None)
        failed = [e["index"] + 1 for e in log
                  if e.get("score") is None and "dropped" not in e]
        if failed and y:
            ax.scatter(failed, [min(y)] * len(failed), marker="x", color=colour)
        dropped = [e["index"] + 1 for e in log if "dropped" in e]  # --fidelity: no score
        if dropped and y:
            ax.scatter(dropped, [min(y)] * len(dropped), marker="|", color=colour,
                       alpha=0.5)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylim(*dice_range(ax.get_ylim()))
    ax.set_xlabel("evaluation")
    ax.set_ylabel("validation Dice (mean over folds x seeds, ± SE)")
    ax.set_title("Search progress: every evaluation and the best so far")
    ax.grid(alpha=0.3)
    if runs:
        ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    out_prefix = Path(out_prefix)
    paths = [out_prefix.with_suffix(".png"), out_prefix.with_suffix(".svg")]
    for p in paths:
        atomic_write(p, partial(save_format, fig, p.suffix[1:]))
    plt.close(fig)
    return paths
