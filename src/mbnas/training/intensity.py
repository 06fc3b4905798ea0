"""Intensity augmentation for robustness to other scanners: batched on the training device.

Domain shift between sites is largely a shift of intensities: another contrast, gamma,
bias field, noise level or sharpness. These transforms imitate it during training (the
remedies of data-augmentation based domain generalisation); each is applied to a sample
with its own probability, all of them to the whole batch at once (no per-sample Python
loop), drawing only from the run's seeded ``torch.Generator``. They are protocol
settings (``Protocol.intensity``), off in every preset, so the paper's protocol is
unchanged; ``ROBUST`` is a ready set of nnU-Net-like values.

The images are already normalised (z-scored), so gamma and the bias field act on each
sample's intensities shifted to start at zero, and the shift is undone afterwards.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# The settings live with the protocol (no torch there); imported from here as before.
from mbnas.training.augment_config import ROBUST, IntensityConfig

__all__ = ["ROBUST", "IntensityConfig", "intensity_augment"]


def _draw(n: int, rng: tuple[float, float], gen: torch.Generator, device: torch.device
          ) -> torch.Tensor:
    return torch.rand(n, generator=gen, device=device) * (rng[1] - rng[0]) + rng[0]


def _chosen(n: int, p: float, gen: torch.Generator, device: torch.device) -> torch.Tensor:
    return (torch.rand(n, generator=gen, device=device) < p)[:, None, None, None]


def _blur(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Separable Gaussian blur with one sigma per sample (grouped convolution)."""
    b, c, h, w = x.shape
    radius = max(1, int(torch.ceil(3 * sigma.max()).item()))
    t = torch.arange(-radius, radius + 1, device=x.device, dtype=x.dtype)
    k = torch.exp(-0.5 * (t[None] / sigma[:, None].to(x.dtype)) ** 2)
    k = (k / k.sum(1, keepdim=True)).repeat_interleave(c, 0)  # (b*c, taps)
    y = x.reshape(1, b * c, h, w)
    y = F.conv2d(F.pad(y, (radius, radius, 0, 0), mode="replicate"), k[:, None, None, :],
                 groups=b * c)
    y = F.conv2d(F.pad(y, (0, 0, radius, radius), mode="replicate"), k[:, None, :, None],
                 groups=b * c)
    return y.reshape(b, c, h, w)


def intensity_augment(images: torch.Tensor, cfg: IntensityConfig, gen: torch.Generator
                      ) -> torch.Tensor:
    """Apply the configured intensity transforms to a batch (B, C, H, W); a new tensor.

    With every probability 0 the batch is returned as is and nothing is drawn from
    ``gen``, so turning the options off reproduces earlier runs exactly.
    """
    if not cfg.enabled:
        return images
    x = images
    n, device = x.shape[0], x.device
    low = x.amin(dim=(2, 3), keepdim=True)
    if cfg.gamma_probability > 0:
        high = x.amax(dim=(2, 3), keepdim=True)
        span = (high - low).clamp_min(1e-6)
        g = _draw(n, cfg.gamma, gen, device)[:, None, None, None].to(x.dtype)
        y = ((x - low) / span).clamp(0, 1) ** g * span + low
        x = torch.where(_chosen(n, cfg.gamma_probability, gen, device), y, x)
    if cfg.contrast_probability > 0:
        mean = x.mean(dim=(2, 3), keepdim=True)
        f = _draw(n, cfg.contrast, gen, device)[:, None, None, None].to(x.dtype)
        x = torch.where(_chosen(n, cfg.contrast_probability, gen, device), (x - mean) * f + mean,
                        x)
    if cfg.bias_probability > 0:
        coarse = torch.rand((n, 1, 4, 4), generator=gen, device=device) * 2 - 1
        field = F.interpolate(coarse, size=x.shape[-2:], mode="bicubic", align_corners=True)
        s = _draw(n, (0.0, cfg.bias_strength), gen, device)[:, None, None, None]
        y = (x - low) * torch.exp(s * field.clamp(-1, 1)).to(x.dtype) + low
        x = torch.where(_chosen(n, cfg.bias_probability, gen, device), y, x)
    if cfg.noise_probability > 0:
        std = _draw(n, cfg.noise_std, gen, device)[:, None, None, None].to(x.dtype)
        noise = torch.randn(x.shape, generator=gen, device=device, dtype=x.dtype)
        x = torch.where(_chosen(n, cfg.noise_probability, gen, device), x + noise * std, x)
    if cfg.blur_probability > 0:
        sigma = _draw(n, cfg.blur_sigma, gen, device).clamp_min(1e-3)
        x = torch.where(_chosen(n, cfg.blur_probability, gen, device), _blur(x, sigma), x)
    return x
