"""The checks every metric's inputs pass: binary masks of one shape and a spacing in mm.

NumPy only (a torch tensor is converted on whatever device it is), so the metric registry
can apply the empty-mask policy without importing torch or MONAI.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from mbnas.errors import MetricError

if TYPE_CHECKING:
    import torch

    MaskLike = np.ndarray | torch.Tensor
else:
    MaskLike = Any

__all__ = ["MaskLike", "check_pair", "check_spacing", "image_diagonal_mm"]


def _as_mask(x: MaskLike, name: str) -> np.ndarray:
    """A 2D or 3D mask as a boolean NumPy array; 0/1 integers and floats are accepted."""
    # A torch tensor (on any device) without importing torch here.
    arr = x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)
    if arr.ndim not in (2, 3):
        raise MetricError(f"{name} must be a 2D or 3D mask, got shape {arr.shape}")
    if arr.dtype == bool:
        return arr
    if not (np.issubdtype(arr.dtype, np.number)) or not np.isin(arr, (0, 1)).all():
        raise MetricError(
            f"{name} must be a binary mask (bool, or numbers that are all 0 or 1); "
            f"threshold or one-hot encode it first"
        )
    return arr.astype(bool)


def check_pair(pred: MaskLike, ref: MaskLike) -> tuple[np.ndarray, np.ndarray]:
    """Two masks of one shape as boolean NumPy arrays.

    Raises:
        MetricError: A mask that is not 2D/3D or not binary, or shapes that differ.
    """
    p, r = _as_mask(pred, "pred"), _as_mask(ref, "ref")
    if p.shape != r.shape:
        raise MetricError(f"pred and ref differ in shape: {p.shape} vs {r.shape}")
    return p, r


def check_spacing(spacing: Sequence[float], ndim: int) -> tuple[float, ...]:
    """Validate a voxel size in mm: one positive, finite number per array axis.

    Args:
        spacing: Voxel size in mm, in the arrays' axis order.
        ndim: Number of spatial axes of the arrays it belongs to.

    Returns:
        The spacing as a tuple of Python floats.

    Raises:
        MetricError: If the spacing is not ``ndim`` positive finite numbers.
    """
    if isinstance(spacing, (int, float, np.number, str, bytes)):
        raise MetricError(
            f"spacing must have one value per axis ({ndim} values), got {spacing!r}; "
            f"for isotropic voxels pass ({spacing!s},) * {ndim}"
        )
    try:
        values = tuple(float(s) for s in spacing)
    except (TypeError, ValueError) as exc:
        raise MetricError(f"spacing must be numbers in mm, got {spacing!r}") from exc
    if len(values) != ndim:
        raise MetricError(
            f"spacing {values} has {len(values)} values but the arrays have {ndim} axes"
        )
    if not all(math.isfinite(s) and s > 0 for s in values):
        raise MetricError(f"spacing values must be positive finite mm, got {values}")
    return values


def image_diagonal_mm(shape: Sequence[int], spacing: Sequence[float]) -> float:
    """Length in mm of the diagonal of an image: the HD95 of a one-sided empty mask pair."""
    values = check_spacing(spacing, len(shape))
    return float(math.sqrt(sum((n * s) ** 2 for n, s in zip(shape, values, strict=True))))
