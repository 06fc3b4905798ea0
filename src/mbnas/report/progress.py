"""Search progress figure (paper, Figure 2a/b): every evaluation's score and the best so far."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import yaml  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from mbnas.errors import ConfigError  # noqa: E402
from mbnas.io import atomic_write  # noqa: E402


def read_search_log(run_dir: str | Path) -> list[dict]:
    """The evaluations of a search run, in order (empty when none are logged yet)."""
    path = Path(run_dir) / "search_log.jsonl"
    if not path.exists():
        return []
    entries = []
    for n, line in enumerate(path.read_text(errors="replace").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except (ValueError, RecursionError) as exc:
            raise ConfigError(f"{path}: line {n} is not a JSON object ({exc}); resume the "
                              "search to rewrite the log from its state") from None
        if not isinstance(entry, dict):
            raise ConfigError(f"{path}: line {n} is not a JSON object")
        entries.append(entry)
    return [e for e in entries if "skipped" not in e]  # architectures over a cost limit


def run_label(run_dir: str | Path) -> str:
    """"<method> seed <seed>": "MB-NAS seed 0", "MB-NAS (random) seed 1", "Bilevel-NAS ..."."""
    from mbnas.search.registry import (
        default_strategy,
        method_name,
        strategy_definition,
        upgrade_settings,
    )

    cfg_path = Path(run_dir) / "config.yaml"
    cfg = upgrade_settings(yaml.safe_load(cfg_path.read_text()) or {}) \
        if cfg_path.exists() else {}
    space, strategy = str(cfg.get("space", "?")), cfg.get("strategy")
    label = method_name(space, str(strategy))
    # A strategy other than the default that makes no method of its own is named.
    if strategy is not None and strategy != default_strategy():
        try:
            own = bool(strategy_definition(strategy).method)
        except ConfigError:  # a strategy this version does not know
            own = False
        if not own:
            label += f" ({strategy})"
    return f"{label} seed {cfg.get('seed', '?')}"


def plot_search_progress(run_dirs: Sequence[str | Path], out_prefix: str | Path) -> list[Path]:
    """Plot the runs of ``run_dirs`` on one figure; write ``out_prefix``.png and .svg.

    Failed evaluations (no score) are drawn as crosses at the bottom of the axis.
    """
    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    for i, run_dir in enumerate(run_dirs):
        log = read_search_log(run_dir)
        colour = f"C{i}"
        x = [e["index"] + 1 for e in log if e.get("score") is not None]
        y = [e["score"] for e in log if e.get("score") is not None]
        ax.scatter(x, y, s=12, alpha=0.5, color=colour)
        best, running = [], float("-inf")
        for e in log:
            if e.get("score") is not None:
                running = max(running, e["score"])
            best.append(running if running > float("-inf") else None)
        xs = [e["index"] + 1 for e, b in zip(log, best) if b is not None]
        ax.step(xs, [b for b in best if b is not None], where="post", color=colour,
                label=run_label(run_dir))
        failed = [e["index"] + 1 for e in log if e.get("score") is None]
        if failed and y:
            ax.scatter(failed, [min(y)] * len(failed), marker="x", color=colour)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("evaluation")
    ax.set_ylabel("validation Dice (mean over folds x seeds)")
    ax.set_title("Search progress: every evaluation and the best so far")
    ax.grid(alpha=0.3)
    if run_dirs:
        ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    out_prefix = Path(out_prefix)
    paths = [out_prefix.with_suffix(".png"), out_prefix.with_suffix(".svg")]
    for p in paths:
        atomic_write(p, lambda f, fmt=p.suffix[1:]: fig.savefig(f, format=fmt))
    plt.close(fig)
    return paths
