"""The loss and the learning-rate schedule on inputs whose answers are known by hand."""

from __future__ import annotations

import math

import pytest
import torch

from mbnas.training.loss import poly_lr, soft_dice_loss


def _logits_for(labels: torch.Tensor, k: int, scale: float = 50.0) -> torch.Tensor:
    """Logits whose softmax is (almost) the one-hot of ``labels``."""
    return torch.nn.functional.one_hot(labels, k).permute(0, 3, 1, 2).float() * scale


def test_perfect_prediction_has_zero_loss() -> None:
    labels = torch.zeros(2, 8, 8, dtype=torch.long)
    labels[:, 2:5, 2:5] = 1
    labels[:, 6:, 6:] = 2
    assert soft_dice_loss(_logits_for(labels, 3), labels).item() == pytest.approx(0, abs=1e-4)


def test_half_overlap_gives_known_dice() -> None:
    labels = torch.zeros(1, 4, 4, dtype=torch.long)
    labels[0, :, :2] = 1  # 8 pixels of class 1
    pred = torch.zeros(1, 4, 4, dtype=torch.long)
    pred[0, :, 1:3] = 1  # 8 pixels, 4 of them overlapping
    loss = soft_dice_loss(_logits_for(pred, 2), labels)
    assert loss.item() == pytest.approx(1 - 2 * 4 / 16, abs=1e-3)


def test_loss_averages_foreground_classes_only() -> None:
    labels = torch.zeros(1, 4, 4, dtype=torch.long)
    labels[0, 0, 0] = 1
    labels[0, 3, 3] = 2
    pred = labels.clone()
    pred[0, 3, 3] = 0  # class 2 missed entirely, class 1 perfect; background ignored
    loss = soft_dice_loss(_logits_for(pred, 3), labels)
    assert loss.item() == pytest.approx(0.5, abs=1e-3)


def test_loss_has_gradients() -> None:
    logits = torch.randn(2, 3, 8, 8, requires_grad=True)
    labels = torch.randint(0, 3, (2, 8, 8))
    soft_dice_loss(logits, labels).backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0


def test_poly_schedule_values() -> None:
    assert poly_lr(1e-3, 0, 50) == pytest.approx(1e-3)
    assert poly_lr(1e-3, 25, 50) == pytest.approx(1e-3 * 0.5 ** 0.9)
    assert poly_lr(1e-3, 49, 50) == pytest.approx(1e-3 * (1 / 50) ** 0.9)
    values = [poly_lr(1e-3, e, 100) for e in range(100)]
    assert all(a > b for a, b in zip(values, values[1:]))
    assert math.isclose(poly_lr(2.0, 10, 20, exponent=1.0), 1.0)
