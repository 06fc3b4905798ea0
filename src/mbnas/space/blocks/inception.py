"""Inception block: four parallel branches concatenated to the output channels."""

from __future__ import annotations

import torch
from torch import nn

from mbnas.space.blocks.common import ConvBNAct, check_kernel
from mbnas.space.blocks.registry import register_block


@register_block("inception")
class InceptionBlock(nn.Module):
    """Branches 1x1 | 1x1 -> kxk | 1x1 -> kxk -> kxk | 3x3 max-pool -> 1x1 (Szegedy et al.).

    The output channels are split over the four branches as evenly as possible (the
    first branches take the remainder); each 1x1 reduction has its branch's width.
    Every convolution is conv-BN-act.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int) -> None:
        super().__init__()
        check_kernel(kernel_size)
        if out_channels < 4:
            raise ValueError(f"inception block needs out_channels >= 4, got {out_channels}")
        w = [out_channels // 4 + (1 if i < out_channels % 4 else 0) for i in range(4)]
        k = kernel_size
        self.branch1 = ConvBNAct(in_channels, w[0], 1)
        self.branch2 = nn.Sequential(ConvBNAct(in_channels, w[1], 1), ConvBNAct(w[1], w[1], k))
        self.branch3 = nn.Sequential(
            ConvBNAct(in_channels, w[2], 1), ConvBNAct(w[2], w[2], k), ConvBNAct(w[2], w[2], k)
        )
        self.branch4 = nn.Sequential(
            nn.MaxPool2d(3, stride=1, padding=1), ConvBNAct(in_channels, w[3], 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat(
            [self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], dim=1
        )
