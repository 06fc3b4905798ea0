"""Layer factories by spatial dimensions: the one place a network says 2D or 3D.

MONAI's convention (``Conv[Conv.CONV, spatial_dims]``, ``Norm[Norm.BATCH, spatial_dims]``,
``Pool[Pool.AVG, spatial_dims]``) picks a layer class by its number of spatial
dimensions: 2 for images (B, C, H, W), 3 for volumes (B, C, D, H, W). These functions
do the same for the four layers the blocks and the builder use, without importing
MONAI's network package (seconds of import time in every training worker). A kernel,
stride or padding given as an int applies to every axis, as in PyTorch.

Example::

    conv(3)(4, 8, 3, padding=1)   # nn.Conv3d(4, 8, 3, padding=1)
"""

from __future__ import annotations

from torch import nn

from mbnas.nn import SPATIAL_DIMS, check_dims

__all__ = ["SPATIAL_DIMS", "avg_pool", "batch_norm", "check_dims", "conv", "conv_transpose"]

_CONV: dict[int, type[nn.Module]] = {2: nn.Conv2d, 3: nn.Conv3d}
_CONV_TRANSPOSE: dict[int, type[nn.Module]] = {2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}
_BATCH_NORM: dict[int, type[nn.Module]] = {2: nn.BatchNorm2d, 3: nn.BatchNorm3d}
_AVG_POOL: dict[int, type[nn.Module]] = {2: nn.AvgPool2d, 3: nn.AvgPool3d}


def conv(spatial_dims: int) -> type[nn.Module]:
    """The convolution class: ``nn.Conv2d`` or ``nn.Conv3d``."""
    return _CONV[check_dims(spatial_dims)]


def conv_transpose(spatial_dims: int) -> type[nn.Module]:
    """The transposed convolution class: ``nn.ConvTranspose2d`` or ``nn.ConvTranspose3d``."""
    return _CONV_TRANSPOSE[check_dims(spatial_dims)]


def batch_norm(spatial_dims: int) -> type[nn.Module]:
    """The batch normalisation class: ``nn.BatchNorm2d`` or ``nn.BatchNorm3d``."""
    return _BATCH_NORM[check_dims(spatial_dims)]


def avg_pool(spatial_dims: int) -> type[nn.Module]:
    """The average pooling class: ``nn.AvgPool2d`` or ``nn.AvgPool3d``."""
    return _AVG_POOL[check_dims(spatial_dims)]
