"""Report figures (matplotlib, Agg): per-case box plots and example segmentations.

Every function writes ``<out_prefix>.png`` and ``<out_prefix>.svg`` atomically and
returns the two paths. The architecture picture lives in :mod:`mbnas.spaces.mbnas` and the
search progress plot in :mod:`mbnas.reporting.progress_figure`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from mbnas.io import atomic_write
from mbnas.metrics.registry import METRICS, MetricDefinition
from mbnas.reporting.report_data import ModelEvaluation, ReportError
from mbnas.reporting.table import check_models

__all__ = ["case_values", "measured_metrics", "plot_case_boxplot", "plot_case_boxplots",
           "plot_example_segmentations", "save_figure"]

_REFERENCE_COLOUR = "#00e000"
_PREDICTION_COLOUR = "#ff2d6f"
_CLASS_STYLES = ("solid", "dashed", "dotted", "dashdot")


def save_figure(fig: Figure, out_prefix: str | Path) -> list[Path]:
    """Save ``fig`` as PNG and SVG next to each other (atomically) and close it."""
    out_prefix = Path(out_prefix)
    paths = [out_prefix.with_name(out_prefix.name + ".png"),
             out_prefix.with_name(out_prefix.name + ".svg")]
    for p in paths:
        atomic_write(p, partial(save_format, fig, p.suffix[1:]))
    plt.close(fig)
    return paths


def case_values(evaluation: ModelEvaluation, metric: str) -> dict[str, float]:
    """One value per validation case: the metric averaged over the seeds (runs) scoring it.

    In cross-validation each case is validated once per seed, so averaging over seeds
    gives one number per patient, and the box shows the spread over patients.
    """
    _definition(metric)
    by_case: dict[str, list[float]] = {}
    for c in evaluation.cases:
        if metric in c.values:  # a case that did not measure it is left out, not zero
            by_case.setdefault(c.case_id, []).append(c.value(metric))
    return {k: float(np.mean(v)) for k, v in sorted(by_case.items())}


def _definition(metric: str) -> MetricDefinition:
    if metric not in METRICS:
        raise ReportError(f"unknown metric {metric!r}; choose one of {', '.join(METRICS)}")
    return METRICS.get(metric)


def measured_metrics(evals: Sequence[ModelEvaluation]) -> tuple[str, ...]:
    """The registered metrics that some case of some model measured, in table order."""
    return tuple(n for n in METRICS.names()
                 if any(n in c.values for e in evals for c in e.cases))


def plot_case_boxplot(evals: Sequence[ModelEvaluation], metric: str,
                      out_prefix: str | Path) -> list[Path]:
    """Box plot of the per-case ``metric`` (a registered metric's name) per model.

    Each case is one point (its mean over seeds, see :func:`case_values`), drawn over
    the box with a little horizontal jitter. Models without cases get an empty slot.
    """
    check_models(evals)
    label = _definition(metric).axis_label
    data = [list(case_values(e, metric).values()) for e in evals]
    fig, ax = plt.subplots(figsize=(max(4.6, 0.9 * len(evals) + 2.2), 3.6), dpi=110,
                           layout="constrained")
    positions = np.arange(1, len(evals) + 1)
    shown = [i for i, d in enumerate(data) if d]
    if shown:
        ax.boxplot([data[i] for i in shown], positions=positions[shown], widths=0.55,
                   showfliers=False, medianprops={"color": "black"})
    rng = np.random.default_rng(0)  # jitter only; fixed so figures are reproducible
    for i in shown:
        x = positions[i] + rng.uniform(-0.15, 0.15, len(data[i]))
        colour = "C0" if evals[i].kind == "searched" else "C1"
        ax.scatter(x, data[i], s=10, alpha=0.6, color=colour, zorder=3)
    # "MB-NAS (run_a)" on two lines, so that neighbouring long names do not run together
    names = [e.name.replace(" (", "\n(") for e in evals]
    ax.set_xticks(positions, names, rotation=20 if len(evals) > 4 else 0)
    ax.set_xlim(0.4, len(evals) + 0.6)
    ax.set_ylabel(label + " per case")
    ax.set_title(f"{label} per validation case (mean over seeds)", fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    fig.legend(handles=[Line2D([], [], marker="o", ls="", color="C0", label="searched"),
                        Line2D([], [], marker="o", ls="", color="C1", label="baseline")],
               fontsize=8, loc="outside right upper", frameon=False)
    return save_figure(fig, out_prefix)


def plot_case_boxplots(evals: Sequence[ModelEvaluation], out_dir: str | Path,
                       metrics: Sequence[str] | None = None) -> list[Path]:
    """Write ``boxplot_<metric>.png/.svg`` under ``out_dir`` for each metric (default:
    every registered metric some model measured)."""
    paths: list[Path] = []
    for m in measured_metrics(evals) if metrics is None else metrics:
        paths += plot_case_boxplot(evals, m, Path(out_dir) / f"boxplot_{m}")
    return paths


def _check_slice(name: str, arr: np.ndarray, shape: tuple[int, ...] | None) -> np.ndarray:
    arr = np.asarray(arr)
    if arr.ndim != 2:
        raise ReportError(f"{name} must be a 2D slice, got shape {arr.shape}")
    if shape is not None and arr.shape != shape:
        raise ReportError(f"{name} has shape {arr.shape}, the image has {shape}")
    return arr


def _contours(ax: plt.Axes, label: np.ndarray, classes: Sequence[int], colour: str) -> None:
    for k, c in enumerate(classes):
        mask = (label == c).astype(float)
        if 0 < mask.sum() < mask.size:  # an empty or full mask has no contour
            ax.contour(mask, levels=[0.5], colors=colour, linewidths=1.4,
                       linestyles=_CLASS_STYLES[k % len(_CLASS_STYLES)])
        elif mask.size and mask.all():  # all foreground: a frame, or it looks like nothing
            from matplotlib.patches import Rectangle

            h, w = mask.shape
            ax.add_patch(Rectangle((0, 0), w - 1, h - 1, fill=False, edgecolor=colour,
                                   linewidth=2.5, linestyle=_CLASS_STYLES[k % len(
                                       _CLASS_STYLES)]))
            ax.text(w / 2, h / 2, "every pixel\npredicted", color=colour, ha="center",
                    va="center", fontsize=8, fontweight="bold")


def plot_example_segmentations(
    image: np.ndarray,
    reference: np.ndarray,
    predictions: Mapping[str, np.ndarray],
    out_prefix: str | Path,
    title: str | None = None,
    class_names: Mapping[int, str] | None = None,
    captions: Mapping[str, str] | None = None,
) -> list[Path]:
    """Example segmentations (paper, Figure 2d/e): one panel per model.

    Each panel shows the image in grey, the reference contour and that model's
    predicted contour in two colours; with several foreground classes each class has
    its own line style.

    Args:
        image: The 2D image slice (any intensity range; windowed at 1-99 percentiles).
        reference: The ground-truth label slice (0 = background), same shape.
        predictions: Model name -> predicted label slice, same shape; panel order.
        out_prefix: Output path without suffix.
        title: Figure title.
        class_names: Class id -> name for the legend (default "class <id>").
        captions: Model name -> text under the panel title (e.g. the slice Dice).
    """
    img = _check_slice("image", image, None).astype(float)
    ref = _check_slice("reference", reference, img.shape)
    if not predictions:
        raise ReportError("plot_example_segmentations needs at least one prediction")
    preds = {n: _check_slice(f"prediction of {n!r}", p, img.shape)
             for n, p in predictions.items()}
    classes = sorted({int(c) for a in (ref, *preds.values()) for c in np.unique(a) if c != 0})
    lo, hi = np.percentile(img, [1, 99]) if img.size else (0.0, 1.0)
    n = len(preds)
    ncols = min(n, 4)
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(max(3.2 * ncols, 4.0), 3.4 * nrows + 0.6),
                             dpi=110, squeeze=False, layout="constrained")
    for ax in axes.flat[n:]:
        ax.axis("off")
    for ax, (name, pred) in zip(axes.flat, preds.items(), strict=False):
        ax.imshow(img, cmap="gray", vmin=lo, vmax=hi if hi > lo else lo + 1)
        _contours(ax, ref, classes, _REFERENCE_COLOUR)
        _contours(ax, pred, classes, _PREDICTION_COLOUR)
        label = name if not captions or name not in captions else f"{name}\n{captions[name]}"
        ax.set_title(label, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    handles = [Line2D([], [], color=_REFERENCE_COLOUR, label="reference"),
               Line2D([], [], color=_PREDICTION_COLOUR, label="prediction")]
    if len(classes) > 1:
        names = class_names or {}
        handles += [Line2D([], [], color="grey", ls=_CLASS_STYLES[k % len(_CLASS_STYLES)],
                           label=names.get(c, f"class {c}")) for k, c in enumerate(classes)]
    fig.legend(handles=handles, loc="outside lower center", fontsize=8, frameon=False,
               ncol=min(len(handles), 3 * ncols))
    if title:
        fig.suptitle(title, fontsize=10)
    return save_figure(fig, out_prefix)


def save_format(fig: Any, fmt: str, f: Any) -> None:
    """Write ``fig`` as ``fmt`` ("png", "svg") to the open file ``f``."""
    fig.savefig(f, format=fmt)
