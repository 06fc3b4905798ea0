"""Batched data augmentation on the training device, drawn per sample and per transform.

The transforms and their probabilities are the authors' (``py_src/unet/datasets.py``,
see :class:`~mbnas.training.augment_config.AugmentConfig`): for every sample, scaling, shifting,
rotation, flipping and brightness are each applied with their own probability, drawn
from the seeded generator. The geometric ones are folded into one 2x3 affine matrix per
sample, and ``affine_grid`` + ``grid_sample`` resample the whole batch at once (the image
linearly, the label with nearest neighbour), so image and label stay aligned. There is
no per-sample Python loop, so the whole 2D dataset can stay on the GPU.

The authors' scaling crops a square of relative size ``s`` (a normal draw clipped to the
range) and resizes it back to the image: a crop smaller than the image lies at a random
place inside it, a larger one is anchored at the first row and column (zero padded), as
``torchvision``'s ``crop`` does. Their shift is in whole pixels; here it is continuous.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from mbnas.training.augment_config import AugmentConfig


def _bernoulli(shape: tuple[int, ...], p: float, gen: torch.Generator, device) -> torch.Tensor:
    return torch.rand(shape, generator=gen, device=device) < p


def _uniform(n: int, low: float, high: float, gen: torch.Generator, device) -> torch.Tensor:
    return torch.rand(n, generator=gen, device=device) * (high - low) + low


def _clipped_normal(shape: tuple[int, ...], sd: float, bounds: tuple[float, float],
                    gen: torch.Generator, device) -> torch.Tensor:
    draw = 1 + sd * torch.randn(shape, generator=gen, device=device)
    return draw.clamp(bounds[0], bounds[1])


def random_affine(
    n: int, cfg: AugmentConfig, gen: torch.Generator, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random (n, 2, 3) matrices in ``affine_grid``'s normalised coordinates, and whether
    each sample got any geometric transform.

    Every draw is made for every sample whether or not it is applied, so the number of
    draws (and with it the generator's state) depends only on the batch size.
    """
    do_scale = _bernoulli((n,), cfg.scale_p, gen, device)
    s = torch.where(do_scale, _clipped_normal((n,), cfg.scale_sd, cfg.scale, gen, device), 1.0)
    place = torch.rand(n, 2, generator=gen, device=device)
    # Centre of the crop: random inside the image when smaller, anchored at -1 when larger.
    centre = torch.where((s < 1)[:, None], (2 * place - 1) * (1 - s)[:, None], (s - 1)[:, None])
    do_shift = _bernoulli((n,), cfg.shift_p, gen, device)
    shift = (torch.rand(n, 2, generator=gen, device=device) * 2 - 1) * (2 * cfg.shift_fraction)
    shift = shift * do_shift[:, None]
    do_rotate = _bernoulli((n,), cfg.rotate_p, gen, device)
    angle = _uniform(n, -cfg.rotate_degrees, cfg.rotate_degrees, gen, device) * (math.pi / 180)
    angle = angle * do_rotate
    do_flip = _bernoulli((n,), cfg.flip_p, gen, device)
    flip = torch.where(do_flip, -1.0, 1.0)
    # Output -> input: x_in = s * (R F x_out - t) + c, the crop applied first to the image
    # (so last in this chain), then shift, rotation and flip.
    cos, sin = torch.cos(angle) * s, torch.sin(angle) * s
    offset = centre - s[:, None] * shift
    theta = torch.stack(
        [torch.stack([cos * flip, -sin, offset[:, 0]], 1),
         torch.stack([sin * flip, cos, offset[:, 1]], 1)],
        1,
    )
    return theta, do_scale | do_shift | do_rotate | do_flip


def random_brightness(n: int, channels: int, cfg: AugmentConfig, gen: torch.Generator,
                      device: torch.device) -> torch.Tensor:
    """Intensity factors (n, channels): 1 unless the sample and then the channel were drawn."""
    apply = (_bernoulli((n, 1), cfg.brightness_p, gen, device)
             & _bernoulli((n, channels), cfg.brightness_channel_p, gen, device))
    factor = _clipped_normal((n, channels), cfg.brightness_sd, cfg.brightness, gen, device)
    return torch.where(apply, factor, 1.0)


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
    theta, _ = random_affine(n, cfg, gen, device)
    factor = random_brightness(n, images.shape[1], cfg, gen, device)
    # Always resampled (an identity row reproduces its sample): asking whether any sample
    # moved would synchronise with the GPU every step.
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    out = F.grid_sample(images, grid.to(images.dtype), mode="bilinear",
                        padding_mode="zeros", align_corners=False)
    lab = F.grid_sample(labels[:, None].to(grid.dtype), grid, mode="nearest",
                        padding_mode="zeros", align_corners=False)
    return out * factor.to(out.dtype)[:, :, None, None], lab[:, 0].round().to(labels.dtype)
