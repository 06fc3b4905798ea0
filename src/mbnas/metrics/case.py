"""Per-case metrics of a multi-class label volume: every foreground class and their mean."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from mbnas.metrics.binary import MetricError, check_spacing, dice, hd95, surface_dice

__all__ = ["CaseMetrics", "case_metrics"]


@dataclass(frozen=True)
class CaseMetrics:
    """Dice, HD95 (mm) and Surface Dice of one case, per foreground class.

    Every value is finite: empty classes follow the empty-mask policy of
    :mod:`mbnas.metrics.binary`, so the means never silently skip a missed structure.

    Attributes:
        classes: The foreground class ids measured, ``1 .. n_classes - 1``.
        dice: Dice per class, in the order of ``classes``.
        hd95: HD95 in mm per class.
        surface_dice: Surface Dice per class.
        tolerance_mm: The Surface Dice tolerance used.
    """

    classes: tuple[int, ...]
    dice: tuple[float, ...]
    hd95: tuple[float, ...]
    surface_dice: tuple[float, ...]
    tolerance_mm: float

    def __post_init__(self) -> None:
        n = len(self.classes)
        if n == 0:
            raise MetricError("CaseMetrics needs at least one foreground class")
        for name in ("dice", "hd95", "surface_dice"):
            values = getattr(self, name)
            if len(values) != n:
                raise MetricError(f"CaseMetrics.{name} has {len(values)} values for {n} classes")
            if not all(math.isfinite(v) for v in values):
                raise MetricError(f"CaseMetrics.{name} holds a non-finite value: {values}")

    @property
    def mean_dice(self) -> float:
        """Mean Dice over foreground classes."""
        return float(np.mean(self.dice))

    @property
    def mean_hd95(self) -> float:
        """Mean HD95 (mm) over foreground classes."""
        return float(np.mean(self.hd95))

    @property
    def mean_surface_dice(self) -> float:
        """Mean Surface Dice over foreground classes."""
        return float(np.mean(self.surface_dice))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict (plain floats and lists), means included, for storing."""
        return {
            "classes": list(self.classes),
            "dice": list(self.dice),
            "hd95": list(self.hd95),
            "surface_dice": list(self.surface_dice),
            "mean_dice": self.mean_dice,
            "mean_hd95": self.mean_hd95,
            "mean_surface_dice": self.mean_surface_dice,
            "tolerance_mm": self.tolerance_mm,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CaseMetrics:
        """Read what :meth:`to_dict` wrote (the stored means are recomputed, not trusted)."""
        try:
            return cls(
                classes=tuple(int(c) for c in data["classes"]),
                dice=tuple(float(v) for v in data["dice"]),
                hd95=tuple(float(v) for v in data["hd95"]),
                surface_dice=tuple(float(v) for v in data["surface_dice"]),
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
    """Dice, HD95 and Surface Dice of every foreground class of one case.

    Args:
        pred_labels: Predicted class ids, (Z, H, W) (or (H, W)), integers in
            ``0 .. n_classes - 1``; 0 is background.
        ref_labels: Reference class ids of the same shape.
        n_classes: Number of classes, background included (at least 2).
        spacing: Voxel size in mm in the arrays' axis order, e.g. (through-plane, rows,
            columns) for a stack of axial slices.
        tolerance_mm: Surface Dice tolerance in mm.

    Returns:
        The per-class values and their means over the foreground classes.

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
    d, h, s = [], [], []
    for c in classes:
        p, r = pred == c, ref == c
        d.append(dice(p, r))
        h.append(hd95(p, r, values))
        s.append(surface_dice(p, r, values, tolerance_mm))
    return CaseMetrics(classes, tuple(d), tuple(h), tuple(s), float(tolerance_mm))
