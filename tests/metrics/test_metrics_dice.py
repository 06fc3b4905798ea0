"""The one Dice: counts, per-class Dice, and the pooled and per-case validation scores."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mbnas.metrics import (
    MetricError,
    dice,
    dice_counts,
    dice_from_counts,
    label_dice,
    validation_dice,
)


def _two_cases() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Case A (slices 0, 1) is perfect; case B (slice 2) misses class 1 and half of class 2."""
    ref = torch.zeros(3, 2, 4, dtype=torch.long)
    pred = torch.zeros_like(ref)
    ref[0, 0, :2] = ref[1, 0, :2] = 1
    pred[0, 0, :2] = pred[1, 0, :2] = 1
    ref[2, 0, 0] = 1                       # class 1: one pixel, not predicted
    ref[2, 1, 0] = ref[2, 1, 1] = 2        # class 2: two pixels ...
    pred[2, 1, 0] = pred[2, 1, 2] = 2      # ... one found, one false positive
    return pred, ref, torch.tensor([0, 0, 1])


def test_pooled_and_case_dice_match_hand_computation() -> None:
    pred, ref, case = _two_cases()
    counts = dice_counts(pred, ref, 3)
    assert counts[2].tolist() == [[0, 0, 1], [1, 1, 1]]
    # Per case: A = mean(1, 1 [class 2 absent from both]) = 1; B = mean(0, 2/4) = 0.25.
    score, per_case = validation_dice(counts, case, 2, "case")
    assert per_case.tolist() == [[1.0, 1.0], [0.0, 0.5]]
    assert float(score) == pytest.approx((1.0 + 0.25) / 2)
    # Pooled over the fold: class 1 TP 4, FN 1 -> 8/9; class 2 TP 1 FP 1 FN 1 -> 1/2.
    pooled, per_case_again = validation_dice(counts, case, 2, "pooled")
    assert float(pooled) == pytest.approx((8 / 9 + 0.5) / 2)
    assert torch.equal(per_case, per_case_again)
    assert float(pooled) != pytest.approx(float(score))
    with pytest.raises(MetricError, match="unknown Dice mode"):
        validation_dice(counts, case, 2, "mean")


def test_protocol_offers_exactly_the_dice_modes() -> None:
    from mbnas.metrics import DICE_MODES
    from mbnas.training.protocol import DICE_MODES as PROTOCOL_MODES

    assert PROTOCOL_MODES == DICE_MODES


def test_binary_dice_and_label_dice_share_the_formula() -> None:
    rng = np.random.default_rng(1)
    ref = rng.integers(0, 4, size=(5, 20, 20))
    pred = np.where(rng.random(ref.shape) < 0.3, rng.integers(0, 4, ref.shape), ref)
    pred[pred == 3] = 0  # class 3 missed: Dice 0
    got = label_dice(torch.from_numpy(pred), torch.from_numpy(ref), n_classes=5)
    want = [dice(pred == c, ref == c) for c in range(1, 5)]
    assert got.tolist() == pytest.approx(want, rel=1e-12)
    p, r = pred == 1, ref == 1
    assert want[0] == pytest.approx(2 * (p & r).sum() / (p.sum() + r.sum()))
    assert got[2] == 0.0  # class 3
    assert got[3] == 1.0  # class 4 absent from both
    assert label_dice(pred, ref, 5).tolist() == got.tolist()  # NumPy input too
    assert dice_from_counts(torch.tensor([0, 0, 0])) == 1.0


def test_dice_rejects_bad_input() -> None:
    with pytest.raises(MetricError, match="differ in shape"):
        dice_counts(torch.zeros(1, 4, 4, dtype=torch.long),
                    torch.zeros(1, 4, 5, dtype=torch.long), 2)
    with pytest.raises(MetricError, match="outside 0..2"):
        label_dice(torch.tensor([0, 3]), torch.tensor([0, 1]), 3)
    with pytest.raises(MetricError, match="integer"):
        label_dice(torch.zeros(4), torch.zeros(4), 3)
