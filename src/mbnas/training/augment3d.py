"""Batched 3D augmentation on the training device: flips, in-plane rotation, scaling, brightness.

The 3D counterpart of :mod:`mbnas.training.augment`, drawn per sample from the run's
seeded generator with the protocol's probabilities (``AugmentConfig``: ``scale_p`` and
``scale``, ``rotate_p``, ``flip_p`` per axis, the brightness settings). Rotation is
in-plane only, about the through-plane axis, by up to ``VolumeConfig.rotate_degrees``
(nnU-Net rotates anisotropic data in-plane only too). The geometric transforms are one
3x4 affine per sample; ``affine_grid`` + ``grid_sample`` resample the whole batch at
once (image trilinear, label nearest).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from mbnas.training.augment import _bernoulli, _clipped_normal, _uniform, random_brightness
from mbnas.training.augment_config import AugmentConfig
from mbnas.training.volume import VolumeConfig


def random_affine_3d(n: int, cfg: AugmentConfig, volume: VolumeConfig, gen: torch.Generator,
                     device: torch.device) -> torch.Tensor:
    """Random (n, 3, 4) matrices in ``affine_grid``'s coordinates (W, H, D order).

    Volumes are (X, Y, Z) as torch's (D, H, W), so the grid's first coordinate is Z
    (through-plane) and the in-plane rotation turns the second and third (Y, X).
    """
    do_scale = _bernoulli((n,), cfg.scale_p, gen, device)
    s = torch.where(do_scale, _clipped_normal((n,), cfg.scale_sd, cfg.scale, gen, device), 1.0)
    do_rotate = _bernoulli((n,), cfg.rotate_p, gen, device)
    angle = _uniform(n, -volume.rotate_degrees, volume.rotate_degrees, gen, device)
    angle = angle * (math.pi / 180) * do_rotate
    flips = torch.where(_bernoulli((n, 3), cfg.flip_p, gen, device), -1.0, 1.0)
    cos, sin = torch.cos(angle), torch.sin(angle)
    zero, one = torch.zeros_like(cos), torch.ones_like(cos)
    rot = torch.stack([torch.stack([one, zero, zero], 1),
                       torch.stack([zero, cos, -sin], 1),
                       torch.stack([zero, sin, cos], 1)], 1)
    theta = rot * flips[:, None, :] * s[:, None, None]
    return torch.cat([theta, torch.zeros(n, 3, 1, device=device)], 2)


def augment_volumes(images: torch.Tensor, labels: torch.Tensor, cfg: AugmentConfig,
                    volume: VolumeConfig, gen: torch.Generator
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """Augment a batch: images (B, C, X, Y, Z) float, labels (B, X, Y, Z) integer."""
    if not cfg.enabled:
        return images, labels
    n, device = images.shape[0], images.device
    theta = random_affine_3d(n, cfg, volume, gen, device)
    factor = random_brightness(n, images.shape[1], cfg, gen, device)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    out = F.grid_sample(images, grid.to(images.dtype), mode="bilinear", padding_mode="zeros",
                        align_corners=False)
    lab = F.grid_sample(labels[:, None].to(grid.dtype), grid, mode="nearest",
                        padding_mode="zeros", align_corners=False)
    return (out * factor.to(out.dtype)[:, :, None, None, None],
            lab[:, 0].round().to(labels.dtype))
