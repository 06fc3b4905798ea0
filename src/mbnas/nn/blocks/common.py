"""Layers shared by the block families, as the authors' network builds them.

Every block takes ``(in_channels, out_channels, kernel_size, stride=1, spatial_dims=2)``
(2 for images, 3 for volumes; the layers come from :mod:`mbnas.nn.layers`). A
downscaling cell passes ``stride=2``; each family strides where the authors' block
does (see its docstring). Normalisation is BatchNorm everywhere: the authors'
training code passes an affine InstanceNorm to their network class, but the class
never hands it to the blocks, which build ``nn.BatchNorm2d`` themselves (checked by
running their class: 46 BatchNorm2d layers, no InstanceNorm, for the released
genotype ``0320...0121``). Their He initialisation is commented out in the class, so
PyTorch's default initialisation is what ran. See docs/fidelity.md.
"""

from __future__ import annotations

from torch import nn

from mbnas.nn.layers import batch_norm, check_dims, conv

NEGATIVE_SLOPE = 0.01
#: BatchNorm eps of the VGG layers (PyTorch's default) and of torchvision's
#: ``BasicConv2d`` (used by the authors' Dense and Inception blocks).
EPS_VGG = 1e-5
EPS_BASIC = 1e-3


def check_kernel(kernel_size: int) -> int:
    """Return the 'same' padding for an odd kernel size.

    Raises:
        ValueError: If the kernel size is not a positive odd number (an even kernel
            cannot keep the spatial size with symmetric padding).
    """
    if not isinstance(kernel_size, int) or kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be a positive odd integer, got {kernel_size!r}")
    return kernel_size // 2


def check_stride(stride: int) -> int:
    """Return ``stride`` if it is 1 (non-scaling) or 2 (downscaling)."""
    if stride not in (1, 2):
        raise ValueError(f"stride must be 1 or 2, got {stride!r}")
    return stride


def act() -> nn.Module:
    """LeakyReLU(0.01): the activation of the VGG layers."""
    return nn.LeakyReLU(NEGATIVE_SLOPE, inplace=True)


def relu() -> nn.Module:
    """ReLU: the activation of the authors' Residual, Dense and Inception blocks."""
    return nn.ReLU(inplace=True)


def norm(channels: int, eps: float = EPS_VGG, spatial_dims: int = 2) -> nn.Module:
    """The normalisation layer of every block (see the module docstring)."""
    return batch_norm(spatial_dims)(channels, eps=eps)


class ConvBNAct(nn.Sequential):
    """VGG layer: kxk convolution (with bias, as the authors'), BatchNorm, LeakyReLU(0.01)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int,
                 stride: int = 1, spatial_dims: int = 2) -> None:
        padding = check_kernel(kernel_size)
        super().__init__(
            conv(spatial_dims)(in_channels, out_channels, kernel_size,
                               stride=check_stride(stride), padding=padding),
            norm(out_channels, spatial_dims=spatial_dims),
            act(),
        )


class BasicConv(nn.Sequential):
    """Convolution without bias, BatchNorm(eps 1e-3), ReLU: torchvision's ``BasicConv2d``.

    ``kernel_size`` may be a tuple, one size per axis (``(1, k)`` for the factorised
    Inception branches); padding keeps the spatial size (divided by ``stride``).
    """

    def __init__(self, in_channels: int, out_channels: int,
                 kernel_size: int | tuple[int, ...], stride: int = 1,
                 spatial_dims: int = 2) -> None:
        dims = check_dims(spatial_dims)
        sizes = (kernel_size,) * dims if isinstance(kernel_size, int) else tuple(kernel_size)
        if len(sizes) != dims:
            raise ValueError(f"kernel_size {kernel_size!r} must have {dims} sizes")
        super().__init__(
            conv(dims)(in_channels, out_channels, sizes, stride=check_stride(stride),
                       padding=tuple(check_kernel(k) for k in sizes), bias=False),
            norm(out_channels, EPS_BASIC, dims),
            relu(),
        )


def transition(in_channels: int, out_channels: int, stride: int,
               spatial_dims: int = 2) -> BasicConv:
    """The authors' closing reduction of Dense and Inception: 1x1, or 3x3 stride 2."""
    return BasicConv(in_channels, out_channels, 1 if stride == 1 else 3, stride, spatial_dims)
