"""Per-case metrics of multi-class label volumes."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from mbnas.metrics import (
    CaseMetrics,
    MetricError,
    case_metrics,
    dice,
    hd95,
    image_diagonal_mm,
    surface_dice,
)

SHAPE = (8, 32, 32)
SPACING = (2.5, 0.75, 0.75)


def reference() -> np.ndarray:
    """A 3-class volume: class 1 and class 2 are separate boxes."""
    ref = np.zeros(SHAPE, dtype=np.uint8)
    ref[2:6, 4:14, 4:14] = 1
    ref[2:6, 18:28, 18:28] = 2
    return ref


def test_three_class_volume_per_class_values() -> None:
    ref = reference()
    pred = np.zeros_like(ref)
    pred[2:6, 4:14, 4:14] = 1  # class 1 exact
    pred[3:7, 18:28, 18:28] = 2  # class 2 shifted by one slice: overlap 3 of 4 slices
    m = case_metrics(pred, ref, n_classes=3, spacing=SPACING, tolerance_mm=2.0)

    assert m.classes == (1, 2)
    assert m.values["dice"] == pytest.approx((1.0, 0.75))
    assert m.values["hd95"][0] == 0.0
    assert m.values["surface_dice"][0] == pytest.approx(1.0)
    p2, r2 = pred == 2, ref == 2
    assert m.values["hd95"][1] == pytest.approx(hd95(p2, r2, SPACING))
    assert m.values["surface_dice"][1] == pytest.approx(surface_dice(p2, r2, SPACING, 2.0))
    assert 0.0 < m.values["hd95"][1] <= 2.5  # at most one slice apart
    assert m.mean("dice") == pytest.approx(0.875)
    assert m.mean("hd95") == pytest.approx(np.mean(m.values["hd95"]))
    assert m.mean("surface_dice") == pytest.approx(np.mean(m.values["surface_dice"]))


def test_missed_class_counts_as_worst_case() -> None:
    ref = reference()
    pred = np.where(ref == 2, 0, ref).astype(np.uint8)  # class 2 not found at all
    m = case_metrics(pred, ref, 3, SPACING)
    assert m.values["dice"] == (1.0, 0.0)
    assert m.values["surface_dice"] == pytest.approx((1.0, 0.0))
    assert m.values["hd95"] == pytest.approx((0.0, image_diagonal_mm(SHAPE, SPACING)))
    assert m.mean("hd95") == pytest.approx(image_diagonal_mm(SHAPE, SPACING) / 2)


def test_class_absent_from_both_scores_perfectly() -> None:
    ref = reference()
    ref[ref == 2] = 0
    m = case_metrics(ref.copy(), ref, 3, SPACING)
    assert (m.values["dice"], m.values["hd95"], m.values["surface_dice"]) == (
        (1.0, 1.0), (0.0, 0.0), (1.0, 1.0))


def test_torch_labels_give_the_same_values() -> None:
    rng = np.random.default_rng(3)
    ref = reference()
    pred = ref.copy()
    pred[rng.random(SHAPE) < 0.02] = 1
    a = case_metrics(pred, ref, 3, SPACING)
    b = case_metrics(torch.from_numpy(pred.astype(np.int64)), torch.from_numpy(ref), 3, SPACING)
    assert a == b
    assert a.values["dice"][0] == pytest.approx(dice(pred == 1, ref == 1))


def test_to_dict_is_json_safe_and_round_trips() -> None:
    ref = reference()
    pred = np.roll(ref, 2, axis=2)
    m = case_metrics(pred, ref, 3, SPACING, tolerance_mm=1.5)
    d = m.to_dict()
    text = json.dumps(d, allow_nan=False)
    back = CaseMetrics.from_dict(json.loads(text))
    assert back == m
    assert d["mean_dice"] == pytest.approx(m.mean("dice"))
    assert d["tolerance_mm"] == 1.5
    assert all(type(v) is float for v in d["dice"] + d["hd95"] + d["surface_dice"])
    assert all(math.isfinite(v) for v in d["hd95"])


def test_2d_label_image_is_accepted() -> None:
    ref = reference()[3]
    m = case_metrics(ref, ref, 3, SPACING[1:])
    assert m.values["dice"] == (1.0, 1.0)


@pytest.mark.parametrize(
    ("pred", "n_classes", "spacing", "match"),
    [
        (np.full(SHAPE, 3, np.uint8), 3, SPACING, "outside 0..2"),
        (np.zeros((8, 32, 31), np.uint8), 3, SPACING, "differ in shape"),
        (np.zeros(SHAPE, np.float32), 3, SPACING, "integer class ids"),
        (np.zeros(SHAPE, np.uint8), 1, SPACING, "at least 2"),
        (np.zeros(SHAPE, np.uint8), 3, SPACING[1:], "3 axes"),
    ],
)
def test_bad_input_raises(pred, n_classes: int, spacing, match: str) -> None:
    with pytest.raises(MetricError, match=match):
        case_metrics(pred, reference(), n_classes, spacing)


def test_from_dict_rejects_other_dicts() -> None:
    with pytest.raises(MetricError, match="not a CaseMetrics dict"):
        CaseMetrics.from_dict({"dice": [1.0]})
