"""Batched data augmentation on the training device: one affine grid per batch.

Scaling, shifting, rotation and flipping are folded into one 2x3 affine matrix per
sample; ``affine_grid`` + ``grid_sample`` then resample the whole batch at once, the image
linearly and the label with nearest neighbour, so image and label stay aligned. There is
no per-sample Python loop, so the whole 2D dataset can stay on the GPU.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from mbnas.engine.config import AugmentConfig


def _uniform(n: int, low: float, high: float, gen: torch.Generator, device) -> torch.Tensor:
    return torch.rand(n, generator=gen, device=device) * (high - low) + low


def random_affine(
    n: int, cfg: AugmentConfig, gen: torch.Generator, device: torch.device
) -> torch.Tensor:
    """Random (n, 2, 3) matrices in ``affine_grid``'s normalised coordinates."""
    scale = _uniform(n, cfg.scale[0], cfg.scale[1], gen, device)
    angle = _uniform(n, -cfg.rotate_degrees, cfg.rotate_degrees, gen, device) * (math.pi / 180)
    shift = _uniform(2 * n, -cfg.shift_fraction, cfg.shift_fraction, gen, device).view(n, 2) * 2
    flip = torch.where(
        torch.rand(n, generator=gen, device=device) < cfg.flip_probability, -1.0, 1.0
    )
    apply = torch.rand(n, generator=gen, device=device) < cfg.probability
    # The grid maps output to input coordinates: 1/scale zooms in for scale > 1.
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack(
        [torch.stack([cos * flip, -sin, shift[:, 0]], 1),
         torch.stack([sin * flip, cos, shift[:, 1]], 1)],
        1,
    )
    identity = torch.eye(2, 3, device=device).expand(n, 2, 3)
    return torch.where(apply[:, None, None], theta, identity)


def augment_batch(
    images: torch.Tensor,
    labels: torch.Tensor,
    cfg: AugmentConfig,
    gen: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Augment a batch: images (B, C, H, W) float, labels (B, H, W) integer.

    Returns new tensors; outside the field of view the image is 0 (the normalised mean)
    and the label is background.
    """
    if not cfg.enabled:
        return images, labels
    n, device = images.shape[0], images.device
    theta = random_affine(n, cfg, gen, device)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    out = F.grid_sample(images, grid.to(images.dtype), mode="bilinear",
                        padding_mode="zeros", align_corners=False)
    lab = F.grid_sample(labels[:, None].to(grid.dtype), grid, mode="nearest",
                        padding_mode="zeros", align_corners=False)
    brightness = _uniform(n, cfg.brightness[0], cfg.brightness[1], gen, device)
    out = out * brightness.to(out.dtype)[:, None, None, None]
    return out, lab[:, 0].round().to(labels.dtype)
