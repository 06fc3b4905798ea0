"""Table 1 metrics as the paper measured them: per 2D slice, on the training grid.

The authors' evaluation (``segment_results`` in ``py_src/unet/unet_evaluate.py``, metric
classes in ``py_src/unet/metrics.py``) scores every validation slice on its own:

- Dice and Surface Dice (2 mm): per foreground class, then the mean over classes;
- HD95: per foreground class, then the **maximum** over classes;
- a class absent from both the slice's prediction and reference scores Dice 1, Surface
  Dice 1 and HD95 0, so the many empty slices count as perfect.

A class present in exactly one of them follows mbnas's empty-mask policy
(:mod:`mbnas.metrics.binary`: Dice 0, Surface Dice 0, HD95 = the slice's diagonal),
where the authors' surface-distance package returns an infinite HD95. A case's values
are the means over its slices. Every registered metric is measured this way, each with its
own reductions (:mod:`mbnas.metrics.registry`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from mbnas.errors import MetricError
from mbnas.metrics.masks import check_spacing
from mbnas.metrics.registry import metric_definitions

__all__ = ["paper_slice_metrics"]


def paper_slice_metrics(pred: np.ndarray, ref: np.ndarray, n_classes: int,
                        spacing: Sequence[float], tolerance_mm: float = 2.0) -> dict[str, Any]:
    """The paper's per-slice metrics of one case, averaged over its slices.

    Args:
        pred: Predicted class ids of the case's slices, (N, H, W).
        ref: Reference class ids, same shape.
        n_classes: Number of classes, background included.
        spacing: In-plane pixel size in mm (rows, columns) of the slices.
        tolerance_mm: Surface Dice tolerance.

    Returns:
        ``{"slices": N, "both_empty": slices with no foreground in prediction or
        reference}`` and, per registered metric, its value reduced over each slice's
        classes (``slice_classes``: the mean, the maximum for HD95) and then over the
        slices (``slices``); ``per_class``: class id -> the reductions over slices of
        that class's values (keys are strings, as in JSON).
    """
    pred, ref = np.asarray(pred), np.asarray(ref)
    values = check_spacing(spacing, 2)
    classes = range(1, n_classes)
    per_class: dict[str, dict[str, float]] = {str(c): {} for c in classes}
    if pred.shape != ref.shape or pred.ndim != 3:
        raise MetricError(f"pred and ref must be (N, H, W) of one shape, got {pred.shape} "
                          f"and {ref.shape}")
    # no foreground class in either: the paper's convention scores such a slice perfect
    both_empty = int(np.sum(~((pred > 0) | (ref > 0)).reshape(len(pred), -1).any(1)))
    out: dict[str, Any] = {"slices": int(len(pred)), "both_empty": both_empty}
    masks = [[(pred[i] == c, ref[i] == c) for c in classes] for i in range(len(pred))]
    for d in metric_definitions():
        # (N, K - 1): a class absent from both a slice's masks scores d.both_empty
        v = [[d.compute_checked(p, r, values, tolerance_mm=tolerance_mm) for p, r in row]
             for row in masks]
        out[d.name] = d.reduce([d.reduce(row, "slice_classes") for row in v], "slices")
        for k, c in enumerate(classes):
            per_class[str(c)][d.name] = d.reduce([row[k] for row in v], "slices")
    out["per_class"] = per_class
    return out
