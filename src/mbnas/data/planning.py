"""Plans of a 3D search, made once per dataset as nnU-Net makes them.

* **Target spacing**: the median voxel size of the dataset per axis (after reorientation
  to RAS), or the ``--target-spacing`` given (one value: every axis; three: per axis).
* **Strides per resolution level** (what a ``down`` cell halves, what an ``up`` cell
  doubles): at each level an axis is halved unless its spacing at that level is more
  than twice the finest spacing at that level (nnU-Net's rule for anisotropic data:
  0.8 x 0.8 x 5 mm is halved in-plane only until the in-plane spacing has caught up
  with the slice thickness). The strides depend on the spacing only, so every
  genotype's ``down``/``up`` at a level means the same planned stride.
* **Patch size**: the median shape after resampling, made divisible by the product of
  the strides and shrunk, largest extent first (in mm), until a training step fits the
  memory budget (:func:`patch_memory_gb`).

The plan is recorded in the protocol (``Protocol.volume``), so runs with another plan
have another key and a resumed search uses the plan it started with.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from mbnas.errors import ConfigError

#: One (sx, sy, sz) per resolution level, each 1 or 2 (as ``VolumeConfig.strides`` holds
#: them: three values per level, checked there).
Strides = tuple[tuple[int, ...], ...]

_V = TypeVar("_V")

#: Bytes per voxel and base channel that one training step holds: an estimate of the
#: activations kept for the backward pass across the encoder, the decoder and the skips
#: of a U-Net-like network of ~3 levels (2 convolutions and a norm per node, fp32): about
#: 60 floats per voxel and base channel. The budget is a planning rule, not a measurement.
BYTES_PER_VOXEL_CHANNEL = 240.0


def _xyz(values: Iterable[_V]) -> tuple[_V, _V, _V]:
    """The (x, y, z) of values per axis (exactly three)."""
    x, y, z = values
    return x, y, z


def plan_strides(spacing: Sequence[float], levels: int) -> Strides:
    """The stride of each of ``levels`` downsampling levels (nnU-Net's anisotropy rule).

    Args:
        spacing: Target voxel size in mm per axis (X, Y, Z).
        levels: Resolution levels below the first (the space's greatest depth).

    Returns:
        One (sx, sy, sz) per level, each 1 or 2.
    """
    current = [float(s) for s in spacing]
    if any(not s > 0 for s in current):
        raise ConfigError(f"target spacing must be positive, got {tuple(spacing)}")
    out: list[tuple[int, ...]] = []
    for _ in range(levels):
        finest = min(current)
        stride = tuple(1 if s > 2 * finest else 2 for s in current)
        current = [s * k for s, k in zip(current, stride, strict=True)]
        out.append(stride)
    return tuple(out)


def stride_product(strides: Strides) -> tuple[int, int, int]:
    """Total downsampling factor per axis: a patch must be a multiple of it."""
    return _xyz(int(np.prod([s[a] for s in strides])) for a in range(3))


def check_patch(patch: Sequence[int], strides: Strides) -> None:
    """Refuse a patch size that the planned strides do not divide.

    Raises:
        ConfigError: naming the nearest sizes that would fit.
    """
    factor = stride_product(strides)
    if len(patch) != 3:
        raise ConfigError(f"patch size must have 3 values (x, y, z), got {tuple(patch)}")
    if all(p % f == 0 and p > 0 for p, f in zip(patch, factor, strict=True)):
        return
    fits = tuple(max(f, p // f * f) for p, f in zip(patch, factor, strict=True))
    raise ConfigError(f"patch size {'x'.join(map(str, patch))} is not divisible by the "
                      f"planned downsampling {'x'.join(map(str, factor))} (strides "
                      f"{format_strides(strides)}); use --patch-size "
                      f"{','.join(map(str, fits))}")


def patch_memory_gb(patch: Sequence[int], batch_size: int, base_channels: int) -> float:
    """Estimated memory (GB) of one training step on ``batch_size`` patches."""
    voxels = float(np.prod([int(p) for p in patch]))
    return batch_size * voxels * base_channels * BYTES_PER_VOXEL_CHANNEL / 1e9


def plan_patch(median_shape: Sequence[float], spacing: Sequence[float], strides: Strides,
               batch_size: int, base_channels: int, budget_gb: float) -> tuple[int, int, int]:
    """The largest patch up to the median shape that fits ``budget_gb``.

    Raises:
        ConfigError: when even the smallest patch the strides allow does not fit.
    """
    factor = stride_product(strides)
    patch = [max(f, int(m) // f * f) for m, f in zip(median_shape, factor, strict=True)]
    while patch_memory_gb(patch, batch_size, base_channels) > budget_gb:
        shrinkable = [a for a in range(3) if patch[a] > factor[a]]
        if not shrinkable:
            need = patch_memory_gb(patch, batch_size, base_channels)
            raise ConfigError(
                f"no patch fits the memory budget of {budget_gb:g} GB: the smallest the "
                f"planned strides allow, {'x'.join(map(str, patch))}, needs {need:.2g} GB "
                f"at batch size {batch_size} and {base_channels} base channels; raise "
                "--memory-budget or lower the batch size or channels")
        axis = max(shrinkable, key=lambda a: patch[a] * spacing[a])
        patch[axis] -= factor[axis]
    return _xyz(patch)


def check_patch_budget(patch: Sequence[int], spacing: Sequence[float], strides: Strides,
                       batch_size: int, base_channels: int, budget_gb: float) -> None:
    """Refuse a given patch that cannot fit the memory budget, saying which one would."""
    need = patch_memory_gb(patch, batch_size, base_channels)
    if need <= budget_gb:
        return
    fits = plan_patch(patch, spacing, strides, batch_size, base_channels, budget_gb)
    raise ConfigError(f"patch size {'x'.join(map(str, patch))} needs about {need:.2g} GB "
                      f"per training step, over the memory budget of {budget_gb:g} GB; "
                      f"{'x'.join(map(str, fits))} fits (--patch-size "
                      f"{','.join(map(str, fits))})")


def format_strides(strides: Strides) -> str:
    """Strides as people read them: ``2x2x1, 2x2x1, 2x2x2``."""
    return ", ".join("x".join(map(str, s)) for s in strides) or "none"


def canonical_geometry(path: Path) -> tuple[tuple[float, float, float], tuple[int, int, int]]:
    """Voxel size (mm) and shape of an image in the closest RAS orientation, from its header."""
    import nibabel as nib

    # nibabel's load is annotated FileBasedImage; a NIfTI volume is a SpatialImage (affine,
    # shape), as the other header readers (mbnas.data.spacing) take it.
    img: Any = nib.load(path)
    ornt = nib.orientations.io_orientation(img.affine)
    sizes = np.sqrt((np.asarray(img.affine)[:3, :3] ** 2).sum(axis=0))
    axes = [int(np.flatnonzero(ornt[:, 0] == k)[0]) for k in range(3)]
    return (_xyz(float(sizes[a]) for a in axes), _xyz(int(img.shape[a]) for a in axes))


def median_geometry(paths: Sequence[Path], target: Sequence[float] | None = None
                    ) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    """The dataset's median spacing per axis, and its median shape after resampling to
    ``target`` (default: that median spacing)."""
    geometry = [canonical_geometry(Path(p)) for p in paths]
    spacing = np.array([g[0] for g in geometry])
    shape = np.array([g[1] for g in geometry], dtype=float)
    median = _xyz(round(float(v), 4) for v in np.median(spacing, axis=0))
    tgt = np.asarray(target if target is not None else median, dtype=float)
    extent = np.median(shape * spacing / tgt, axis=0)
    return median, _xyz(float(v) for v in extent)


def resolve_spacing(given: Sequence[float], median: Sequence[float]) -> tuple[float, float, float]:
    """The target spacing: ``given`` (one value for every axis, or three), else the median."""
    if not given:
        return _xyz(float(v) for v in median)
    if len(given) == 1:
        given = tuple(given) * 3
    if len(given) != 3 or any(not (math.isfinite(v) and v > 0) for v in given):
        raise ConfigError(f"target spacing must be one or three positive numbers (mm), "
                          f"got {tuple(given)}")
    return _xyz(float(v) for v in given)
