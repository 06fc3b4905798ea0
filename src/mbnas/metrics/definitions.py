"""The paper's three metrics, registered: Dice, HD95 and Surface Dice.

Each registration names the function (:mod:`mbnas.metrics.binary`, on MONAI) and the
policy for empty masks:

=====================  ======  ==========================  ============
prediction/reference   Dice    HD95 (mm)                   Surface Dice
=====================  ======  ==========================  ============
both empty             1       0                           1
exactly one empty      0       image diagonal in mm        0
=====================  ======  ==========================  ============

HD95 reduces over a slice's classes by the maximum, as the authors' per-slice evaluation
did (``py_src/unet/unet_evaluate.py``); everything else by the mean.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mbnas.metrics.masks import image_diagonal_mm
from mbnas.metrics.registry import DICE, register_metric


@register_metric(DICE, label="Dice", header="DSC", unit="", higher_is_better=True,
                 decimals=4, both_empty=1.0, one_empty=0.0, column="dsc",
                 about="Dice similarity coefficient 2|P∩R| / (|P| + |R|)")
def _dice(pred: np.ndarray, ref: np.ndarray, spacing: Sequence[float]) -> float:
    from mbnas.metrics.binary import dice

    return dice(pred, ref)


@register_metric("hd95", label="HD95", header="HD95 (mm)", unit="mm",
                 higher_is_better=False, decimals=3, both_empty=0.0,
                 one_empty=image_diagonal_mm, slice_classes="max",
                 about="95th-percentile symmetric Hausdorff distance between the surfaces")
def _hd95(pred: np.ndarray, ref: np.ndarray, spacing: Sequence[float]) -> float:
    from mbnas.metrics.binary import hd95

    return hd95(pred, ref, spacing)


@register_metric("surface_dice", label="Surface Dice", header="SurfDice@{tolerance_mm:g}mm",
                 unit="", higher_is_better=True, decimals=4, both_empty=1.0, one_empty=0.0,
                 column="sd", settings=("tolerance_mm",),
                 about="normalised surface Dice: surface within the tolerance of the other")
def _surface_dice(pred: np.ndarray, ref: np.ndarray, spacing: Sequence[float],
                  tolerance_mm: float) -> float:
    from mbnas.metrics.binary import surface_dice

    return surface_dice(pred, ref, spacing, tolerance_mm)
