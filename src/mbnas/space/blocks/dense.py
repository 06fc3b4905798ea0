"""Dense block: DenseNet layers whose inputs are concatenated, then a 1x1 transition."""

from __future__ import annotations

import torch
from torch import nn

from mbnas.space.blocks.common import ConvBNAct, act, check_kernel
from mbnas.space.blocks.registry import register_block

N_LAYERS = 4


@register_block("dense")
class DenseBlock(nn.Module):
    """``N_LAYERS`` pre-activation layers (BN, act, kxk conv) with growth rate g.

    Layer i sees the concatenation of the block input and all earlier layer outputs
    (Huang et al.); the growth rate is ``max(8, out_channels // N_LAYERS)``. A 1x1
    conv-BN-act transition maps the final concatenation to ``out_channels`` so that
    the block ends, like the others, on normalised and activated features.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int) -> None:
        super().__init__()
        padding = check_kernel(kernel_size)
        growth = max(8, out_channels // N_LAYERS)
        self.layers = nn.ModuleList()
        width = in_channels
        for _ in range(N_LAYERS):
            self.layers.append(nn.Sequential(
                nn.BatchNorm2d(width),
                act(),
                nn.Conv2d(width, growth, kernel_size, padding=padding, bias=False),
            ))
            width += growth
        self.transition = ConvBNAct(width, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [x]
        for layer in self.layers:
            features.append(layer(torch.cat(features, dim=1)))
        return self.transition(torch.cat(features, dim=1))
