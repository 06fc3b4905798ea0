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
are the means over its slices. Dice comes from :mod:`mbnas.metrics.overlap`, the
distances from :func:`~mbnas.metrics.binary.hd95` and
:func:`~mbnas.metrics.binary.surface_dice`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from mbnas.metrics.binary import check_spacing, hd95, surface_dice
from mbnas.metrics.overlap import dice_counts, dice_from_counts

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
        ``{"slices": N, "both_empty", "dice", "hd95", "surface_dice"}`` (``both_empty``:
        slices with no foreground in prediction or reference; means over slices of each
        slice's class mean, class maximum for HD95) and ``per_class``: class id ->
        the means over slices of that class's values (keys are strings, as in JSON).
    """
    pred, ref = np.asarray(pred), np.asarray(ref)
    values = check_spacing(spacing, 2)
    dice = dice_from_counts(dice_counts(pred, ref, n_classes)).numpy()  # (N, K - 1)
    hd = np.zeros_like(dice)
    sd = np.ones_like(dice)
    for i in range(len(pred)):
        for c in range(1, n_classes):
            p, r = pred[i] == c, ref[i] == c
            if p.any() or r.any():
                hd[i, c - 1] = hd95(p, r, values)
                sd[i, c - 1] = surface_dice(p, r, values, tolerance_mm)
    # no foreground class in either: the paper's convention scores such a slice perfect
    both_empty = int(np.sum(~((pred > 0) | (ref > 0)).reshape(len(pred), -1).any(1)))
    return {
        "slices": int(len(pred)),
        "both_empty": both_empty,
        "dice": float(dice.mean(1).mean()),
        "hd95": float(hd.max(1).mean()),
        "surface_dice": float(sd.mean(1).mean()),
        "per_class": {str(c): {"dice": float(dice[:, c - 1].mean()),
                          "hd95": float(hd[:, c - 1].mean()),
                          "surface_dice": float(sd[:, c - 1].mean())}
                      for c in range(1, n_classes)},
    }
