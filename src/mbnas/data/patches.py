"""Training patches drawn from memory-mapped volumes, with foreground oversampling.

As nnU-Net's data loader: every sample of a batch comes from a case drawn uniformly; the
last ``round(batch * foreground_oversampling)`` samples are centred on a random
foreground voxel of their case (from the positions kept at preprocessing), the others
lie anywhere in the volume. A volume smaller than the patch is padded (image 0, the
normalised mean; label background), never refused. Only the patch is read from disk.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import EllipsisType

import numpy as np

from mbnas.data.volumes import VolumeData


def patch_origin(shape: Sequence[int], patch: Sequence[int], rng: np.random.Generator,
                 centre: Sequence[int] | None = None) -> tuple[int, ...]:
    """Origin of a patch in a volume of ``shape``: random, or around ``centre``.

    An origin may be negative (or the patch overhang the end) only along an axis where
    the volume is smaller than the patch; the volume then lies inside the patch.
    """
    out = []
    for a, (n, p) in enumerate(zip(shape, patch, strict=True)):
        lo, hi = min(0, n - p), max(0, n - p)
        if centre is None:
            out.append(int(rng.integers(lo, hi + 1)))
        else:
            out.append(int(np.clip(int(centre[a]) - p // 2, lo, hi)))
    return tuple(out)


def crop(array: np.ndarray, origin: Sequence[int], patch: Sequence[int]) -> np.ndarray:
    """The patch at ``origin`` of the last three axes of ``array``, zero-padded outside."""
    lead = array.shape[:-3]
    out = np.zeros((*lead, *patch), dtype=array.dtype)
    src: list[EllipsisType | slice] = [...]
    dst: list[EllipsisType | slice] = [...]
    for o, p, n in zip(origin, patch, array.shape[-3:], strict=True):
        a, b = max(o, 0), min(o + p, n)
        src.append(slice(a, b))
        dst.append(slice(a - o, b - o))
    out[tuple(dst)] = array[tuple(src)]
    return out


def sample_patches(data: VolumeData, patch: Sequence[int], batch_size: int,
                   foreground_oversampling: float, rng: np.random.Generator
                   ) -> tuple[np.ndarray, np.ndarray]:
    """A batch of training patches: images (B, C, *patch) float32, labels (B, *patch) uint8."""
    patch = tuple(int(p) for p in patch)
    images = np.zeros((batch_size, data.in_channels, *patch), np.float32)
    labels = np.zeros((batch_size, *patch), np.uint8)
    forced = round(batch_size * foreground_oversampling)
    for i in range(batch_size):
        case = data.cases[int(rng.integers(len(data.cases)))]
        label = data.label(case.case_id)
        centre = None
        if i >= batch_size - forced:
            fg = data.foreground(case.case_id)
            if len(fg):
                centre = fg[int(rng.integers(len(fg)))]
        origin = patch_origin(label.shape, patch, rng, centre)
        images[i] = crop(data.image(case.case_id), origin, patch)
        labels[i] = crop(label, origin, patch)
    return images, labels
