"""The paper's per-slice metrics: empty slices count as perfect, HD95 is the class maximum."""

from __future__ import annotations

import numpy as np
import pytest

from mbnas.metrics import hd95, surface_dice
from mbnas.metrics.slices import paper_slice_metrics


def test_per_slice_policy_and_class_maximum() -> None:
    ref = np.zeros((3, 16, 16), np.uint8)
    pred = np.zeros_like(ref)
    # slice 0: empty in both -> Dice 1, HD 0, SD 1
    # slice 1: class 1 perfect, class 2 shifted by 2 px
    ref[1, 2:6, 2:6] = 1
    pred[1, 2:6, 2:6] = 1
    ref[1, 10:14, 10:14] = 2
    pred[1, 10:14, 12:16] = 2
    # slice 2: class 1 missed
    ref[2, 4:8, 4:8] = 1
    spacing = (0.5, 0.5)
    got = paper_slice_metrics(pred, ref, 3, spacing)
    hd_shift = hd95(pred[1] == 2, ref[1] == 2, spacing)
    sd_shift = surface_dice(pred[1] == 2, ref[1] == 2, spacing, 2.0)
    diagonal = float(np.hypot(16 * 0.5, 16 * 0.5))
    dice = [1.0, (1.0 + 0.5) / 2, (0.0 + 1.0) / 2]    # class 2 absent on slice 2 -> 1
    hd = [0.0, max(0.0, hd_shift), max(diagonal, 0.0)]  # maximum over classes
    sd = [1.0, (1.0 + sd_shift) / 2, (0.0 + 1.0) / 2]
    assert got["slices"] == 3 and got["both_empty"] == 1  # only slice 0
    assert got["dice"] == pytest.approx(np.mean(dice))
    assert got["hd95"] == pytest.approx(np.mean(hd))
    assert got["surface_dice"] == pytest.approx(np.mean(sd))
    assert got["per_class"]["2"]["dice"] == pytest.approx((1.0 + 0.5 + 1.0) / 3)
    assert hd_shift == pytest.approx(1.0)  # 2 px of 0.5 mm
