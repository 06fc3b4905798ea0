"""Batched torch Dice used during training agrees with the reference Dice."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mbnas.metrics import MetricError, batch_dice, dice, label_dice


def test_batch_dice_matches_dice_per_item_and_channel() -> None:
    g = torch.Generator().manual_seed(0)
    pred = torch.rand(3, 4, 6, 16, 16, generator=g) > 0.6
    ref = torch.rand(3, 4, 6, 16, 16, generator=g) > 0.6
    pred[1, 2] = False
    ref[1, 2] = False  # both empty -> 1
    pred[2, 3] = False  # only the prediction empty -> 0
    got = batch_dice(pred, ref)
    assert got.shape == (3, 4)
    want = [[dice(pred[b, c], ref[b, c]) for c in range(4)] for b in range(3)]
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-6)
    assert got[1, 2] == 1.0
    assert got[2, 3] == 0.0


def test_batch_dice_accepts_float_one_hot() -> None:
    labels = torch.tensor([[0, 1], [2, 2]])
    onehot = torch.nn.functional.one_hot(labels, 3).permute(2, 0, 1)[None].float()
    assert batch_dice(onehot, onehot).tolist() == [[1.0, 1.0, 1.0]]


def test_label_dice_matches_dice_per_class() -> None:
    rng = np.random.default_rng(1)
    ref = rng.integers(0, 4, size=(5, 20, 20))
    pred = np.where(rng.random(ref.shape) < 0.3, rng.integers(0, 4, ref.shape), ref)
    pred[pred == 3] = 0  # class 3 missed: Dice 0
    got = label_dice(torch.from_numpy(pred), torch.from_numpy(ref), n_classes=5)
    want = [dice(pred == c, ref == c) for c in range(1, 5)]
    assert got.tolist() == pytest.approx(want, rel=1e-6)
    assert got[2] == 0.0  # class 3
    assert got[3] == 1.0  # class 4 absent from both
    assert label_dice(pred, ref, 5).tolist() == got.tolist()  # NumPy input too


def test_label_dice_and_batch_dice_reject_bad_input() -> None:
    with pytest.raises(MetricError, match="differ in shape"):
        batch_dice(torch.zeros(1, 2, 4, 4), torch.zeros(1, 2, 4, 5))
    with pytest.raises(MetricError, match="outside 0..2"):
        label_dice(torch.tensor([0, 3]), torch.tensor([0, 1]), 3)
    with pytest.raises(MetricError, match="integer"):
        label_dice(torch.zeros(4), torch.zeros(4), 3)
