"""Layers shared by the block families, as the authors' network builds them.

Every block takes ``(in_channels, out_channels, kernel_size, stride=1)``. A
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


def norm(channels: int, eps: float = EPS_VGG) -> nn.Module:
    """The normalisation layer of every block (see the module docstring)."""
    return nn.BatchNorm2d(channels, eps=eps)


class ConvBNAct(nn.Sequential):
    """VGG layer: kxk convolution (with bias, as the authors'), BatchNorm, LeakyReLU(0.01)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int,
                 stride: int = 1) -> None:
        padding = check_kernel(kernel_size)
        super().__init__(
            nn.Conv2d(in_channels, out_channels, kernel_size, stride=check_stride(stride),
                      padding=padding),
            norm(out_channels),
            act(),
        )


class BasicConv(nn.Sequential):
    """Convolution without bias, BatchNorm(eps 1e-3), ReLU: torchvision's ``BasicConv2d``.

    ``kernel_size`` may be a pair (kh, kw) for the factorised Inception branches;
    padding keeps the spatial size (divided by ``stride``).
    """

    def __init__(self, in_channels: int, out_channels: int,
                 kernel_size: int | tuple[int, int], stride: int = 1) -> None:
        kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
        super().__init__(
            nn.Conv2d(in_channels, out_channels, (kh, kw), stride=check_stride(stride),
                      padding=(check_kernel(kh), check_kernel(kw)), bias=False),
            norm(out_channels, EPS_BASIC),
            relu(),
        )


def transition(in_channels: int, out_channels: int, stride: int) -> BasicConv:
    """The authors' closing reduction of Dense and Inception: 1x1, or 3x3 stride 2."""
    return BasicConv(in_channels, out_channels, 1 if stride == 1 else 3, stride)
