"""Segment a scan with a 3D model folder: the volume preprocessing of training, sliding windows.

Per scan: reorient to RAS, resample to the model's target spacing (trilinear) and
normalise each channel as recorded in ``model.json`` (the functions training used,
:mod:`mbnas.data.volumes`, :mod:`mbnas.data.normalise`); then MONAI's Gaussian-weighted
sliding windows over the whole volume, each window the mean softmax of the folder's
networks (the fold ensemble); the probabilities are resampled back to the canonical
grid (trilinear), the argmax taken there, and the labels put back in the scan's voxel
order, so they lie on the scan's own grid with its affine.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F

from mbnas.data.check import voxel_sizes
from mbnas.data.normalise import normalise_case, normalise_ct
from mbnas.data.orientation import from_canonical, to_canonical
from mbnas.data.volumes import resample_image
from mbnas.training.train3d import sliding_window_logits

if TYPE_CHECKING:
    from mbnas.inference.segment import Segmenter


def prepare_volume(image: np.ndarray, affine: np.ndarray, volume: dict[str, Any],
                   normalisation: tuple[dict[str, Any], ...]) -> tuple[np.ndarray, tuple[int, ...]]:
    """A scan (X, Y, Z, C) as training saw its cases: (C, x, y, z) float32 at the model's
    spacing, normalised; and the canonical grid (X, Y, Z) the labels go back to."""
    canonical, canonical_affine = to_canonical(image, affine)
    voxel = tuple(float(v) for v in voxel_sizes(canonical_affine))
    img = resample_image(np.asarray(canonical), voxel, tuple(volume["spacing"]))
    for c, scheme in enumerate(normalisation):
        if scheme["scheme"] == "ct":
            normalise_ct(img[c], (float(scheme["clip"][0]), float(scheme["clip"][1])),
                         float(scheme["mean"]), float(scheme["std"]))
        else:
            normalise_case(img[c], scheme["scheme"])
    return img, tuple(canonical.shape[:3])


@torch.no_grad()
def probabilities_on_grid(predictor: Any, image: np.ndarray, volume: dict[str, Any],
                          grid: tuple[int, ...], device: torch.device) -> torch.Tensor:
    """Class probabilities (K, *grid) of a prepared volume (C, x, y, z), resampled to ``grid``."""
    # a copy: the image may be a read-only memory map
    x = torch.from_numpy(np.array(image, dtype=np.float32))[None].to(device)
    prob = sliding_window_logits(predictor, x, volume["patch_size"], float(volume["overlap"]))
    if tuple(prob.shape[2:]) != tuple(grid):
        prob = F.interpolate(prob, size=tuple(grid), mode="trilinear", align_corners=False)
    return prob[0]


def segment_volume(segmenter: Segmenter, image: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """Class ids (X, Y, Z) uint8 of a scan on its own grid (see the module docstring)."""
    model = segmenter.model
    assert model.volume is not None
    img, grid = prepare_volume(image, affine, model.volume, model.normalisation)
    prob = probabilities_on_grid(segmenter.probabilities, img, model.volume, grid,
                                 segmenter.device)
    labels = prob.argmax(0).to(torch.uint8).cpu().numpy()
    return np.ascontiguousarray(from_canonical(labels, affine))
