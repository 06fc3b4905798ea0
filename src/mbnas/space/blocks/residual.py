"""Residual block: the ResNet basic block with kxk convolutions."""

from __future__ import annotations

import torch
from torch import nn

from mbnas.space.blocks.common import ConvBNAct, act, check_kernel
from mbnas.space.blocks.registry import register_block


@register_block("residual")
class ResidualBlock(nn.Module):
    """conv-BN-act, conv-BN, plus the shortcut, then act (He et al. 2016).

    The shortcut is the identity when the channel count is kept, otherwise a 1x1
    convolution + BatchNorm projection.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int) -> None:
        super().__init__()
        padding = check_kernel(kernel_size)
        self.conv1 = ConvBNAct(in_channels, out_channels, kernel_size)
        self.conv2 = nn.Conv2d(out_channels, out_channels, kernel_size, padding=padding,
                               bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut: nn.Module = nn.Identity()
        if in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, bias=False),
                nn.BatchNorm2d(out_channels),
            )
        self.act = act()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(self.conv1(x)))
        return self.act(out + self.shortcut(x))
