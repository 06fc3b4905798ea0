"""The Pareto front of a cost-aware search: plot, table and card line (from ``front.json``).

``mbnas search --objectives dice,<cost>...`` writes ``RUN_DIR/front.json``: the archive
(every network no other evaluated network dominates) with its search Dice and all four
cost figures, and the baselines' cost figures, all measured the same way. This module
renders it from values (the driver reads the file); no torch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import NullFormatter  # noqa: E402

from mbnas.io import atomic_write_text  # noqa: E402
from mbnas.reporting.figures import save_figure  # noqa: E402
from mbnas.reporting.report_data import ModelEvaluation  # noqa: E402
from mbnas.spaces.languages import architecture_text  # noqa: E402

#: (figure, axis label, scale to the unit shown)
AXES = (("params", "parameters (M)", 1e-6), ("macs", "MACs per forward pass (M)", 1e-6),
        ("memory", "training activation memory per sample (MiB)", 2.0 ** -20),
        ("latency", "latency, batch 1 (ms)", 1.0))
LATENCY_METHOD = ("median of 10 timed forward passes after 3 warm-up passes, batch 1, at the "
                  "training size, fp32 (the precision of `mbnas predict`), the device "
                  "synchronised after each pass, on the device named")
COST_FIELDS = {"params": "max_params", "macs": "max_macs", "memory": "max_memory",
               "latency": "max_latency_ms"}


def genotype_text(genotype: Mapping[str, Any]) -> str:
    """A compact one-line architecture, as its language's codec writes it.

    An MB-NAS genotype: ``s vgg3 / d res5 / u den3<2`` (s/d/u: same/down/up; ``<2``: skip
    from node 2); anything no codec reads: its name or kind.
    """
    return architecture_text(genotype)


def objectives_text(config: Mapping[str, Any]) -> str:
    """The card's line: objectives and hard limits of one search config."""
    objectives = list(config.get("objectives") or ["dice"])
    from mbnas.strategies.limits import format_figure

    limits = [f"{n} <= {format_figure(n, float(config[f]))}"
              for n, f in COST_FIELDS.items() if config.get(f) is not None]
    size = (config.get("protocol") or {}).get("image_size", "?")
    text = ("Dice only" if objectives == ["dice"] else
            f"{', '.join(objectives)} (Pareto local search: Dice up, costs down)")
    text += f"; limits: {', '.join(limits)}" if limits else "; no cost limits"
    if limits or len(objectives) > 1:
        text += (f"; figures at the training size {size}x{size}, latency on "
                 f"{config.get('latency_device', 'cpu')}")
    return text


def _cost_axis(ax: Any, xs: Sequence[float]) -> None:
    """A log axis with numbers when the figures span a decade or more, else a linear one
    (a log axis over less than a decade has no major tick, so no number at all)."""
    positive = [x for x in xs if x > 0]
    if positive and max(positive) / min(positive) >= 10:
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())  # minor labels overlap
    else:
        ax.ticklabel_format(axis="x", style="sci", scilimits=(-3, 4))
    if positive:
        low, high = min(positive), max(positive)
        margin = (high / low) ** 0.05 if ax.get_xscale() == "log" else None
        if margin is not None:
            ax.set_xlim(low / margin, high * margin)
        else:
            pad = 0.05 * (high - low) or 0.05 * high
            ax.set_xlim(low - pad, high + pad)


def plot_front(front: Mapping[str, Any], log: Sequence[Mapping[str, Any]], title: str,
               out_prefix: str | Path, evals: Sequence[ModelEvaluation] = ()) -> list[Path]:
    """Dice against each cost figure: every evaluated network, the front, the baselines.

    Baselines with an evaluation are placed at their evaluated Dice (stars); without one,
    at their cost as a dashed vertical line (their Dice is not known before evaluation).
    """
    costs = [c for c in front["objectives"] if c != "dice"]
    baseline_dice = {e.name: e.mean_dice() for e in evals if e.kind == "baseline"}
    fig, axes = plt.subplots(1, len(AXES), figsize=(4.2 * len(AXES), 3.8), dpi=110)
    members = front["members"]
    scores = [e["score"] for e in log if e.get("score") is not None]
    scores += [m["score"] for m in members] + list(baseline_dice.values())
    for ax, (name, label, scale) in zip(axes, AXES, strict=True):
        pts = [(e["costs"][name] * scale, e["score"]) for e in log
               if e.get("score") is not None and name in (e.get("costs") or {})]
        xs = [x for x, _ in pts] + [m["figures"][name] * scale for m in members]
        xs += [f[name] * scale for f in front.get("baselines", {}).values()]
        if pts:
            ax.scatter(*zip(*pts, strict=True), s=14, c="0.7", label="evaluated")
        xy = sorted((m["figures"][name] * scale, m["score"]) for m in members)
        ax.scatter(*zip(*xy, strict=True), s=30, c="tab:red", zorder=3, label="archive")
        if name in costs and len(costs) == 1:
            ax.step(*zip(*xy, strict=True), where="post", c="tab:red", lw=1)
        for i, (bname, figures) in enumerate(sorted(front.get("baselines", {}).items())):
            x = figures[name] * scale
            colour = f"C{i + 2}"
            if bname in baseline_dice:
                ax.scatter([x], [baseline_dice[bname]], marker="*", s=120, c=colour,
                           zorder=4, label=f"{bname} (evaluated)")
            else:
                ax.axvline(x, ls="--", c=colour, lw=1, label=f"{bname} cost")
        _cost_axis(ax, xs)
        if scores:  # one Dice range on every panel, over every evaluated point
            pad = max(0.02, 0.05 * (max(scores) - min(scores)))
            ax.set_ylim(min(scores) - pad, max(scores) + pad)
        ax.set_xlabel(label + (" [objective]" if name in costs else ""))
        ax.set_ylabel("search Dice")
        ax.grid(alpha=0.3)
    handles: dict[str, Any] = {}
    for ax in axes:
        for handle, text in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(text, handle)
    fig.legend(list(handles.values()), list(handles), fontsize=7, loc="lower center",
               ncol=len(handles))
    fig.suptitle(f"{title}: Dice against cost (figures at "
                 f"{front['image_size']}x{front['image_size']}; latency on "
                 f"{front['latency_device']})", fontsize=10)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return save_figure(fig, out_prefix)


def front_rows(front: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per archive member, best Dice first: the table's values, formatted."""
    rows = []
    for m in front["members"]:
        f = m["figures"]
        rows.append({
            "arch_key": m["arch_key"], "genotype": genotype_text(m["genotype"]),
            "dice": f"{m['score']:.4f}", "params": f"{f['params'] / 1e6:.3f} M",
            "macs": f"{f['macs'] / 1e6:.1f} M @ {front['image_size']}",
            "memory": f"{f['memory'] / 2 ** 20:.1f} MiB",
            "latency": f"{f['latency']:.2f} ms", "device": front["latency_device"]})
    return rows


_HEAD = ("arch_key", "genotype", "dice", "params", "macs", "memory", "latency", "device")
_TITLES = ("arch key", "genotype", "search Dice", "params", "MACs", "memory/sample",
           "latency", "device")


def front_markdown(front: Mapping[str, Any], title: str) -> str:
    lines = [f"## Pareto front: {title}", "",
             "| " + " | ".join(_TITLES) + " |", "|" + "---|" * len(_TITLES)]
    lines += ["| " + " | ".join(str(r[k]) for k in _HEAD) + " |" for r in front_rows(front)]
    lines += ["", f"Latency: {LATENCY_METHOD}.", ""]
    return "\n".join(lines)


def front_html(front: Mapping[str, Any], title: str) -> str:
    head = "".join(f"<th>{escape(t)}</th>" for t in _TITLES)
    body = "".join("<tr>" + "".join(f"<td>{escape(str(r[k]))}</td>" for k in _HEAD) + "</tr>"
                   for r in front_rows(front))
    return (f"<h3>{escape(title)}</h3><table><thead><tr>{head}</tr></thead>"
            f"<tbody>{body}</tbody></table><p class=\"meta\">Objectives: "
            f"{escape(', '.join(front['objectives']))}. Latency: {escape(LATENCY_METHOD)}."
            "</p>")


def front_section(runs: Sequence[tuple[str, Mapping[str, Any] | None, Sequence[Any]]],
                  evals: Sequence[ModelEvaluation], figs: Path, out: Path, add: Any
                  ) -> tuple[str, list[Path]]:
    """Plot and tabulate the front of every cost-aware run of a report.

    Args:
        runs: (label, front or None, search log entries) of each search run.
        evals: The evaluation's models (baselines placed at their Dice), may be empty.
        figs: The report's figures folder; out: the report folder.
        add: ``add(paths, caption)`` of the report, to embed a figure.

    Returns:
        (the HTML of the section, "" when no run has a front; files written).
    """
    parts, markdown, files = [], [], []
    for label, front, log in runs:
        if front is None or not front.get("members"):
            continue
        name = "".join(c if c.isalnum() else "-" for c in label.lower())
        add(plot_front(front, log, label, figs / f"front_{name}", evals),
            f"Pareto front of {label}: search Dice against each cost; red: the archive "
            "(networks no other evaluated network dominates), grey: every evaluated "
            "network, baselines at their cost (and their evaluated Dice, if evaluated).")
        parts.append(front_html(front, f"{label} ({len(front['members'])} networks)"))
        markdown.append(front_markdown(front, label))
    if not parts:
        return "", files
    path = out / "front.md"
    atomic_write_text(path, "\n".join(markdown))
    files.append(path)
    return "".join(parts), files
