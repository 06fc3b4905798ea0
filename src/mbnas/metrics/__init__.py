"""Segmentation metrics in mm: pure functions of (prediction, reference, spacing).

Every metric is a registered definition (:data:`METRICS`, :mod:`mbnas.metrics.registry`):
its function, label, unit, direction, decimals, empty-mask values and reductions. The
built-ins are Dice, HD95 and Surface Dice (:mod:`mbnas.metrics.definitions`, on the
functions of :mod:`mbnas.metrics.binary`, built on MONAI's ``compute_*`` functions) and
ASSD (:mod:`mbnas.metrics.assd`). Per-case metrics of label volumes
(:mod:`mbnas.metrics.case`), per-slice metrics as the paper measured them
(:mod:`mbnas.metrics.slices`) and the Dice counts that every Dice in mbnas comes from,
the run score included (:mod:`mbnas.metrics.overlap`). Every function applies the same
documented empty-mask policy, so no value is NaN or inf: both empty -> Dice 1, HD95 0,
Surface Dice 1; exactly one empty -> Dice 0, Surface Dice 0, HD95 = the image diagonal in mm
(each definition's ``both_empty`` and ``one_empty``).
"""

from __future__ import annotations

from typing import Any

from mbnas.errors import MetricError
from mbnas.metrics.masks import check_spacing, image_diagonal_mm
from mbnas.metrics.registry import (
    DICE,
    METRICS,
    MetricDefinition,
    metric_definitions,
    register_metric,
)

# The functions on torch and MONAI load on first use: reading the registry (labels,
# directions, a report from stored numbers) imports neither.
_LAZY = {
    "dice": "binary", "hd95": "binary", "surface_dice": "binary",
    "CaseMetrics": "case", "case_metrics": "case",
    "DICE_MODES": "overlap", "dice_counts": "overlap", "dice_from_counts": "overlap",
    "label_dice": "overlap", "validation_dice": "overlap",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f"mbnas.metrics.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'mbnas.metrics' has no attribute {name!r}")


__all__ = [
    "DICE",
    "DICE_MODES",
    "METRICS",
    "CaseMetrics",
    "MetricDefinition",
    "MetricError",
    "dice_counts",
    "dice_from_counts",
    "case_metrics",
    "check_spacing",
    "dice",
    "hd95",
    "image_diagonal_mm",
    "label_dice",
    "metric_definitions",
    "register_metric",
    "surface_dice",
    "validation_dice",
]
