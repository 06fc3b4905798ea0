"""Per-case metrics of a multi-class label volume: every registered metric of every
foreground class, and their reductions over the classes."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from mbnas.errors import MetricError
from mbnas.metrics.masks import check_spacing
from mbnas.metrics.registry import METRICS, metric_definitions

__all__ = ["CaseMetrics", "case_metrics"]


@dataclass(frozen=True)
class CaseMetrics:
    """Every registered metric of one case, per foreground class.

    Every value is finite: empty classes follow each metric's empty-mask policy
    (:mod:`mbnas.metrics.registry`), so the means never silently skip a missed structure.

    Attributes:
        classes: The foreground class ids measured, ``1 .. n_classes - 1``.
        values: Metric name -> its value per class, in the order of ``classes``. A
            metric that is missing was not measured (a record written before it existed).
        tolerance_mm: The Surface Dice tolerance used.
    """

    classes: tuple[int, ...]
    values: Mapping[str, tuple[float, ...]]
    tolerance_mm: float

    def __post_init__(self) -> None:
        n = len(self.classes)
        if n == 0:
            raise MetricError("CaseMetrics needs at least one foreground class")
        for name, values in self.values.items():
            if len(values) != n:
                raise MetricError(f"CaseMetrics: {name} has {len(values)} values for {n} classes")
            if not all(math.isfinite(v) for v in values):
                raise MetricError(f"CaseMetrics: {name} holds a non-finite value: {values}")

    def mean(self, name: str) -> float:
        """Metric ``name`` reduced over the foreground classes (its registered reduction).

        Raises:
            MetricError: If the metric was not measured, or is not registered.
        """
        if name not in self.values:
            raise MetricError(f"metric {name!r} was not measured for this case")
        return METRICS.get(name).reduce(self.values[name], "classes")

    def means(self) -> dict[str, float]:
        """Every measured, registered metric reduced over the classes, in table order."""
        return {n: self.mean(n) for n in METRICS.names() if n in self.values}

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict: ``classes``, per metric its per-class list and ``mean_<name>``,
        and ``tolerance_mm`` (the layout every stored run has used)."""
        out: dict[str, Any] = {"classes": list(self.classes)}
        for name, values in self.values.items():
            out[name] = [float(v) for v in values]
        out.update({f"mean_{n}": v for n, v in self.means().items()})
        out["tolerance_mm"] = self.tolerance_mm
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CaseMetrics:
        """Read what :meth:`to_dict` wrote; a registered metric the dict lacks was not
        measured (an older record). The stored means are recomputed, not trusted."""
        try:
            return cls(
                classes=tuple(int(c) for c in data["classes"]),
                values={n: tuple(float(v) for v in data[n]) for n in METRICS.names()
                        if n in data},
                tolerance_mm=float(data["tolerance_mm"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise MetricError(f"not a CaseMetrics dict ({exc!r}): {dict(data)!r}") from exc


def _as_labels(x: np.ndarray | torch.Tensor, name: str) -> np.ndarray:
    arr = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    if arr.ndim not in (2, 3):
        raise MetricError(f"{name} must be a 2D or 3D label array, got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.integer):
        raise MetricError(f"{name} must hold integer class ids, got dtype {arr.dtype}")
    return arr


def case_metrics(
    pred_labels: np.ndarray | torch.Tensor,
    ref_labels: np.ndarray | torch.Tensor,
    n_classes: int,
    spacing: Sequence[float],
    tolerance_mm: float = 2.0,
) -> CaseMetrics:
    """Every registered metric of every foreground class of one case.

    Args:
        pred_labels: Predicted class ids, (Z, H, W) (or (H, W)), integers in
            ``0 .. n_classes - 1``; 0 is background.
        ref_labels: Reference class ids of the same shape.
        n_classes: Number of classes, background included (at least 2).
        spacing: Voxel size in mm in the arrays' axis order, e.g. (through-plane, rows,
            columns) for a stack of axial slices.
        tolerance_mm: Surface Dice tolerance in mm.

    Returns:
        The per-class values of every metric (:data:`~mbnas.metrics.registry.METRICS`).

    Raises:
        MetricError: On shapes that differ, class ids out of range or a bad spacing.
    """
    pred, ref = _as_labels(pred_labels, "pred_labels"), _as_labels(ref_labels, "ref_labels")
    if pred.shape != ref.shape:
        raise MetricError(
            f"pred_labels and ref_labels differ in shape: {pred.shape} vs {ref.shape}"
        )
    if int(n_classes) < 2:
        raise MetricError(f"n_classes must be at least 2 (background + one class), got {n_classes}")
    values = check_spacing(spacing, pred.ndim)
    for name, arr in (("pred_labels", pred), ("ref_labels", ref)):
        if arr.size and (arr.min() < 0 or arr.max() >= n_classes):
            raise MetricError(
                f"{name} holds class ids {int(arr.min())}..{int(arr.max())}, "
                f"outside 0..{n_classes - 1}"
            )
    classes = tuple(range(1, int(n_classes)))
    masks = [(pred == c, ref == c) for c in classes]  # boolean, of one shape: checked
    measured = {d.name: tuple(d.compute_checked(p, r, values, tolerance_mm=tolerance_mm)
                              for p, r in masks) for d in metric_definitions()}
    return CaseMetrics(classes, measured, float(tolerance_mm))
