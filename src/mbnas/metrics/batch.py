"""Dice on torch tensors, batched and on the tensors' device: cheap enough to run every epoch."""

from __future__ import annotations

import numpy as np
import torch

from mbnas.metrics.binary import MetricError

__all__ = ["batch_dice", "label_dice"]


def batch_dice(pred_onehot: torch.Tensor, ref_onehot: torch.Tensor) -> torch.Tensor:
    """Dice of every item and channel of a batch of one-hot (or binary) masks.

    Args:
        pred_onehot: Binary masks (B, C, *spatial): bool, or numbers that are 0 or 1.
        ref_onehot: Reference masks of the same shape.

    Returns:
        A float32 tensor (B, C) on the inputs' device. A channel empty in both masks
        scores 1 and one empty in exactly one scores 0 (the empty-mask policy of
        :mod:`mbnas.metrics.binary`). Drop channel 0 for foreground-only Dice.
    """
    if pred_onehot.shape != ref_onehot.shape:
        raise MetricError(
            f"pred and ref differ in shape: {tuple(pred_onehot.shape)} vs {tuple(ref_onehot.shape)}"
        )
    if pred_onehot.ndim < 3:
        raise MetricError(f"expected (B, C, *spatial) masks, got shape {tuple(pred_onehot.shape)}")
    p, r = pred_onehot.float(), ref_onehot.float()
    dims = tuple(range(2, p.ndim))
    inter = (p * r).sum(dim=dims)
    total = p.sum(dim=dims) + r.sum(dim=dims)
    return torch.where(total > 0, 2 * inter / total.clamp_min(1), torch.ones_like(total))


def label_dice(
    pred_labels: torch.Tensor | np.ndarray, ref_labels: torch.Tensor | np.ndarray, n_classes: int
) -> torch.Tensor:
    """Dice of every foreground class of one label volume, from a single confusion count.

    One ``bincount`` over ``n_classes * ref + pred`` gives the overlaps and sizes of all
    classes at once, so the cost does not grow with the number of classes.

    Args:
        pred_labels: Predicted class ids, any shape, integers in ``0 .. n_classes - 1``.
        ref_labels: Reference class ids of the same shape.
        n_classes: Number of classes, background included.

    Returns:
        A float32 tensor (n_classes - 1,) on the inputs' device, class 1 first, with the
        empty-mask policy applied (absent from both -> 1).
    """
    p, r = torch.as_tensor(pred_labels), torch.as_tensor(ref_labels)
    if p.shape != r.shape:
        raise MetricError(f"pred and ref differ in shape: {tuple(p.shape)} vs {tuple(r.shape)}")
    if p.is_floating_point() or r.is_floating_point():
        raise MetricError("label_dice needs integer class ids, got floating-point labels")
    if n_classes < 2:
        raise MetricError(f"n_classes must be at least 2, got {n_classes}")
    p, r = p.reshape(-1).long(), r.reshape(-1).long()
    for name, t in (("pred", p), ("ref", r)):
        if t.numel() and (int(t.min()) < 0 or int(t.max()) >= n_classes):
            raise MetricError(f"{name} labels outside 0..{n_classes - 1}")
    confusion = torch.bincount(r * n_classes + p, minlength=n_classes * n_classes)
    confusion = confusion.reshape(n_classes, n_classes).float()
    inter = confusion.diagonal()
    total = confusion.sum(0) + confusion.sum(1)
    out = torch.where(total > 0, 2 * inter / total.clamp_min(1), torch.ones_like(total))
    return out[1:]
