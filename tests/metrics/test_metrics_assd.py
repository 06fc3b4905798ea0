"""ASSD, the metric added as one file: hand-checked values (the shared checks in
test_metrics_registered.py cover its policy, symmetry and scaling)."""

from __future__ import annotations

import numpy as np
import pytest

from mbnas.metrics import METRICS


def test_two_points_are_their_distance_apart() -> None:
    pred, ref = np.zeros((6, 8), bool), np.zeros((6, 8), bool)
    pred[2, 2], ref[2, 5] = True, True
    assert METRICS.get("assd").compute(pred, ref, (1.0, 0.5)) == pytest.approx(1.5)


def test_an_outlier_moves_the_average_not_the_95th_percentile() -> None:
    # a square and the same square with one far-away extra voxel: ASSD averages it in,
    # HD95 (one distance of 41, under 5 %) does not see it
    ref = np.zeros((20, 20), bool)
    ref[2:8, 2:8] = True
    pred = ref.copy()
    pred[17, 17] = True
    assd = METRICS.get("assd").compute(pred, ref, (1.0, 1.0))
    hd95 = METRICS.get("hd95").compute(pred, ref, (1.0, 1.0))
    far = float(np.hypot(17 - 7, 17 - 7))
    assert hd95 == 0.0
    # 21 surface voxels of pred (20 of the square + the outlier), 20 of ref: only the
    # outlier is off, by its distance to the square's corner
    assert assd == pytest.approx(far / 41)
