"""Foreground soft Dice loss and the polynomial learning-rate schedule (paper, section 2.3)."""

from __future__ import annotations

import torch


def soft_dice_loss(logits: torch.Tensor, labels: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """1 - mean foreground soft Dice.

    Args:
        logits: (B, K, *spatial) raw network outputs, K classes with background at 0
            (2D slices or 3D patches).
        labels: (B, *spatial) integer class ids.
        eps: Smoothing of numerator and denominator (the protocol's ``loss_smooth``;
            the authors' ``SoftDiceLossMultiClass``: 1); it makes a class that is
            absent from both prediction and batch count as a perfect score, not 0/0.

    The Dice of each foreground class is computed over the whole batch (nnU-Net's
    "batch Dice"), which stays defined for the many 2D slices where a class is absent,
    then averaged over the foreground classes.
    """
    probs = torch.softmax(logits.float(), dim=1)[:, 1:]
    k = logits.shape[1]
    nd = labels.ndim - 1
    target = torch.nn.functional.one_hot(labels.long(), k).permute(
        0, nd + 1, *range(1, nd + 1))[:, 1:].float()
    dims = (0, *range(2, nd + 2))
    intersection = (probs * target).sum(dims)
    denominator = probs.sum(dims) + target.sum(dims)
    dice = (2 * intersection + eps) / (denominator + eps)
    return 1 - dice.mean()


def poly_lr(base_lr: float, epoch: int, epochs: int, exponent: float = 0.9) -> float:
    """Learning rate of ``epoch`` (0-based): base * (1 - epoch / epochs) ** exponent."""
    return base_lr * (1 - epoch / epochs) ** exponent


def set_poly_lr(optimiser: torch.optim.Optimizer, base_lr: float, epoch: int, epochs: int,
                exponent: float = 0.9) -> float:
    """Give every parameter group of ``optimiser`` :func:`poly_lr`'s rate; return it."""
    lr = poly_lr(base_lr, epoch, epochs, exponent)
    for group in optimiser.param_groups:
        group["lr"] = lr
    return lr
