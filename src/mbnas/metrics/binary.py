"""Dice, HD95 and Surface Dice of one binary mask pair, in mm, with a fixed empty-mask policy.

The distance metrics are MONAI's (``compute_hausdorff_distance`` and
``compute_surface_dice``); this module only checks the inputs and decides what an empty
mask scores. MONAI returns NaN or inf when a mask is empty, and a NaN silently drops out
of a later ``nanmean``: a model that misses a structure would then look *better* on HD95
(MONAI issue 9095). Here every case gets a finite value:

=====================  ======  ==========================  ============
prediction/reference   Dice    HD95 (mm)                   Surface Dice
=====================  ======  ==========================  ============
both empty             1       0                           1
exactly one empty      0       image diagonal in mm        0
both non-empty         as computed by the formula / MONAI
=====================  ======  ==========================  ============

The image diagonal, ``sqrt(sum((shape_i * spacing_i) ** 2))``, is the largest distance two
points of the image can have, so a missed or hallucinated structure scores the worst
HD95 any prediction of that image could score.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import torch
from monai.metrics import compute_hausdorff_distance, compute_surface_dice

from mbnas.errors import MetricError
from mbnas.metrics.masks import MaskLike, check_pair, check_spacing, image_diagonal_mm
from mbnas.metrics.overlap import dice_from_counts  # the one Dice formula

__all__ = [
    "MetricError",
    "check_pair",
    "check_spacing",
    "dice",
    "hd95",
    "image_diagonal_mm",
    "surface_dice",
]


def _tolerance(tolerance_mm: float) -> float:
    try:
        tol = float(tolerance_mm)
    except (TypeError, ValueError):
        tol = math.nan
    if not (math.isfinite(tol) and tol >= 0):
        raise MetricError(f"tolerance_mm must be a finite number >= 0, got {tolerance_mm!r}")
    return tol


def monai_input(mask: np.ndarray) -> torch.Tensor:
    # MONAI wants one-hot (B, C, spatial...); one batch item, one channel, no background.
    return torch.from_numpy(np.ascontiguousarray(mask))[None, None]


@contextmanager
def quiet_monai() -> Iterator[None]:
    # MONAI 1.5+ warns about an argument it passes to itself; the warning is not ours to fix.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*always_return_as_numpy.*")
        yield


def dice(pred: MaskLike, ref: MaskLike) -> float:
    """Dice similarity coefficient ``2|P∩R| / (|P| + |R|)`` of two binary masks.

    Args:
        pred: Predicted mask, 2D or 3D (NumPy array or torch tensor).
        ref: Reference mask of the same shape.

    Returns:
        The Dice in [0, 1]; 1 when both masks are empty, 0 when exactly one is.
    """
    p, r = check_pair(pred, ref)
    tp = int(np.logical_and(p, r).sum())
    counts = torch.tensor([tp, int(p.sum()) - tp, int(r.sum()) - tp])
    return float(dice_from_counts(counts))


def hd95(pred: MaskLike, ref: MaskLike, spacing: Sequence[float]) -> float:
    """95th-percentile symmetric Hausdorff distance between mask surfaces, in mm.

    Computed by MONAI with Euclidean distances between edge voxels, scaled by
    ``spacing``: the 95th percentile of the distances from prediction to reference and of
    those from reference to prediction, whichever is larger.

    Args:
        pred: Predicted mask, 2D or 3D (NumPy array or torch tensor).
        ref: Reference mask of the same shape.
        spacing: Voxel size in mm, in the arrays' axis order (required).

    Returns:
        HD95 in mm; 0 when both masks are empty and the image diagonal in mm when
        exactly one is (see the module docstring).
    """
    p, r = check_pair(pred, ref)
    values = check_spacing(spacing, p.ndim)
    p_any, r_any = bool(p.any()), bool(r.any())
    if not p_any and not r_any:
        return 0.0
    if p_any != r_any:
        return image_diagonal_mm(p.shape, values)
    with quiet_monai():
        out = compute_hausdorff_distance(
            monai_input(p), monai_input(r), include_background=True,
            distance_metric="euclidean", percentile=95, spacing=list(values),
        )
    return float(out[0, 0])


def surface_dice(
    pred: MaskLike, ref: MaskLike, spacing: Sequence[float], tolerance_mm: float = 2.0
) -> float:
    """Normalised Surface Dice: the fraction of both surfaces within ``tolerance_mm`` of the other.

    Computed by MONAI with ``use_subvoxels=True``, which follows DeepMind's
    surface-distance package (Nikolov et al.): surface elements are weighted by their
    area in mm², so anisotropic voxels count as they should.

    Args:
        pred: Predicted mask, 2D or 3D (NumPy array or torch tensor).
        ref: Reference mask of the same shape.
        spacing: Voxel size in mm, in the arrays' axis order (required).
        tolerance_mm: Largest surface deviation, in mm, that still counts as correct.

    Returns:
        Surface Dice in [0, 1]; 1 when both masks are empty, 0 when exactly one is.
    """
    p, r = check_pair(pred, ref)
    values = check_spacing(spacing, p.ndim)
    tol = _tolerance(tolerance_mm)
    p_any, r_any = bool(p.any()), bool(r.any())
    if not p_any and not r_any:
        return 1.0
    if p_any != r_any:
        return 0.0
    with quiet_monai():
        out = compute_surface_dice(
            monai_input(p), monai_input(r), class_thresholds=[tol],
            include_background=True, distance_metric="euclidean", spacing=list(values),
            use_subvoxels=True,
        )
    return float(out[0, 0])
