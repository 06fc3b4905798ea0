"""Voxel order: volumes reoriented to the closest canonical (RAS) orientation, as nibabel's
``as_closest_canonical`` does (axis permutations and flips only), and put back."""

from __future__ import annotations

import numpy as np

_IDENTITY = np.array([[0, 1], [1, 1], [2, 1]], dtype=float)  # RAS in nibabel's ornt form


def to_canonical(array: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Reorient a volume to the closest canonical (RAS) orientation, like nibabel's
    ``as_closest_canonical``: only axis permutations and flips, no resampling.

    Args:
        array: (X, Y, Z, ...) array as stored; trailing axes (channels) are kept.
        affine: Its voxel -> world (mm) affine.

    Returns:
        The reoriented array (a view where possible) and its affine.
    """
    import nibabel as nib

    ornt = nib.orientations.io_orientation(affine)
    if np.array_equal(ornt, _IDENTITY):
        return np.asanyarray(array), np.asarray(affine)
    out = nib.orientations.apply_orientation(array, ornt)
    shape = np.asarray(array.shape[:3])
    return out, np.asarray(affine) @ nib.orientations.inv_ornt_aff(ornt, shape)


def from_canonical(array: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """Undo :func:`to_canonical`: put a canonical (X, Y, Z, ...) array back into the
    voxel order of the volume whose own affine is ``affine``."""
    import nibabel as nib

    ornt = nib.orientations.io_orientation(affine)
    if np.array_equal(ornt, _IDENTITY):
        return np.asanyarray(array)
    return nib.orientations.apply_orientation(array, nib.orientations.ornt_transform(
        _IDENTITY, ornt))
