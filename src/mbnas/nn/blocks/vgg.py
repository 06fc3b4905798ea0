"""VGG block, as in U-Net: two (kxk conv, BatchNorm, LeakyReLU) layers."""

from __future__ import annotations

from torch import nn

from mbnas.nn.blocks.common import ConvBNAct
from mbnas.nn.blocks.registry import register_block


@register_block("vgg", dims=(2, 3))
class VGGBlock(nn.Sequential):
    """Two conv-BN-act layers: in -> out -> out channels; the first one strides."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int,
                 stride: int = 1, spatial_dims: int = 2) -> None:
        super().__init__(
            ConvBNAct(in_channels, out_channels, kernel_size, stride, spatial_dims),
            ConvBNAct(out_channels, out_channels, kernel_size, spatial_dims=spatial_dims),
        )
