"""The one Dice of mbnas: true/false positive and negative counts, then ``2TP / (2TP + FP + FN)``.

Training (the run score), evaluation and reports all measure Dice through these
functions; they differ only in *what the counts are summed over*:

- per slice or per volume: the counts of that item (:func:`dice_counts`);
- ``"case"``: the counts of each validation case (its slices summed), one 3D Dice per
  case and class, averaged over classes and then over cases;
- ``"pooled"``: the counts of all validation slices of the fold summed, one Dice per
  class, averaged over classes (the authors' ``finish_online_evaluation``).

The counts are exact integers on the tensors' device. The empty-mask policy of
:mod:`mbnas.metrics.binary` applies everywhere: a class absent from both prediction and
reference (``2TP + FP + FN = 0``) scores 1.
"""

from __future__ import annotations

import numpy as np
import torch

from mbnas.errors import MetricError

__all__ = ["DICE_MODES", "dice_counts", "dice_from_counts", "label_dice", "validation_dice"]

DICE_MODES = ("pooled", "case")


def _labels(x: torch.Tensor | np.ndarray, name: str) -> torch.Tensor:
    t = torch.as_tensor(x)
    if t.is_floating_point() or t.dtype == torch.bool:
        raise MetricError(f"{name} must hold integer class ids, got {t.dtype}")
    return t


def dice_counts(pred: torch.Tensor | np.ndarray, ref: torch.Tensor | np.ndarray,
                n_classes: int) -> torch.Tensor:
    """TP, FP and FN of every foreground class of every item of a batch.

    Args:
        pred: Predicted class ids (N, *spatial): N items (slices or volumes).
        ref: Reference class ids of the same shape.
        n_classes: Number of classes, background (0) included.

    Returns:
        int64 tensor (N, n_classes - 1, 3) on the inputs' device: [..., 0] TP,
        [..., 1] FP, [..., 2] FN; class 1 first.
    """
    p, r = _labels(pred, "pred"), _labels(ref, "ref")
    if p.shape != r.shape:
        raise MetricError(f"pred and ref differ in shape: {tuple(p.shape)} vs {tuple(r.shape)}")
    if p.ndim < 2:
        raise MetricError(f"expected (N, *spatial) labels, got shape {tuple(p.shape)}")
    if n_classes < 2:
        raise MetricError(f"n_classes must be at least 2, got {n_classes}")
    dims = tuple(range(1, p.ndim))
    out = torch.empty(p.shape[0], n_classes - 1, 3, dtype=torch.int64, device=p.device)
    for c in range(1, n_classes):  # one mask pair at a time keeps memory low
        pc, rc = p == c, r == c
        tp = (pc & rc).sum(dim=dims)
        out[:, c - 1, 0] = tp
        out[:, c - 1, 1] = pc.sum(dim=dims) - tp
        out[:, c - 1, 2] = rc.sum(dim=dims) - tp
    return out


def dice_from_counts(counts: torch.Tensor) -> torch.Tensor:
    """Dice from (..., 3) TP/FP/FN counts, float64 of shape (...); empty -> 1."""
    counts = counts.double()
    tp, fp, fn = counts.unbind(-1)
    denom = 2 * tp + fp + fn
    return torch.where(denom > 0, 2 * tp / denom.clamp_min(1), torch.ones_like(denom))


def label_dice(pred: torch.Tensor | np.ndarray, ref: torch.Tensor | np.ndarray,
               n_classes: int) -> torch.Tensor:
    """Dice of every foreground class of one label array (a slice or a volume).

    Returns:
        float64 tensor (n_classes - 1,), class 1 first.
    """
    p, r = _labels(pred, "pred"), _labels(ref, "ref")
    for name, t in (("pred", p), ("ref", r)):
        if t.numel() and (int(t.min()) < 0 or int(t.max()) >= n_classes):
            raise MetricError(f"{name} labels outside 0..{n_classes - 1}")
    return dice_from_counts(dice_counts(p[None], r[None], n_classes)[0])


def validation_dice(counts: torch.Tensor, case_index: torch.Tensor, n_cases: int,
                    mode: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The validation Dice of a fold from the per-slice counts, and each case's 3D Dice.

    Args:
        counts: (N, K - 1, 3) counts of the fold's validation slices (:func:`dice_counts`).
        case_index: (N,) case of each slice, ``0 .. n_cases - 1``.
        n_cases: Number of validation cases.
        mode: ``"pooled"`` or ``"case"`` (see the module docstring).

    Returns:
        The score (a 0-d float64 tensor, on the counts' device: reading it is the
        caller's one synchronisation) and the per-case, per-class 3D Dice (n_cases, K - 1).
    """
    if mode not in DICE_MODES:
        raise MetricError(f"unknown Dice mode {mode!r}; choose one of {', '.join(DICE_MODES)}")
    per_case_counts = torch.zeros((n_cases, *counts.shape[1:]), dtype=counts.dtype,
                                  device=counts.device)
    per_case_counts.index_add_(0, case_index.to(counts.device), counts)
    per_case = dice_from_counts(per_case_counts)
    if mode == "case":
        return per_case.mean(), per_case
    return dice_from_counts(counts.sum(0)).mean(), per_case
