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

from mbnas.metrics.binary import (
    MetricError,
    check_spacing,
    dice,
    hd95,
    image_diagonal_mm,
    surface_dice,
)
from mbnas.metrics.case import CaseMetrics, case_metrics
from mbnas.metrics.overlap import (
    DICE_MODES,
    dice_counts,
    dice_from_counts,
    label_dice,
    validation_dice,
)
from mbnas.metrics.registry import (
    DICE,
    METRICS,
    MetricDefinition,
    metric_definitions,
    register_metric,
)

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
