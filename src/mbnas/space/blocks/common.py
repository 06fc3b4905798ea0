"""Layers shared by the block families: conv + BatchNorm + LeakyReLU(0.01)."""

from __future__ import annotations

from torch import nn

NEGATIVE_SLOPE = 0.01


def check_kernel(kernel_size: int) -> int:
    """Return the 'same' padding for an odd kernel size.

    Raises:
        ValueError: If the kernel size is not a positive odd number (an even kernel
            cannot keep the spatial size with symmetric padding).
    """
    if not isinstance(kernel_size, int) or kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be a positive odd integer, got {kernel_size!r}")
    return kernel_size // 2


def act() -> nn.Module:
    """The activation used everywhere in the MB-NAS networks."""
    return nn.LeakyReLU(NEGATIVE_SLOPE, inplace=True)


class ConvBNAct(nn.Sequential):
    """kxk convolution (no bias: BatchNorm follows), BatchNorm, LeakyReLU(0.01)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int) -> None:
        padding = check_kernel(kernel_size)
        super().__init__(
            nn.Conv2d(in_channels, out_channels, kernel_size, padding=padding, bias=False),
            nn.BatchNorm2d(out_channels),
            act(),
        )
