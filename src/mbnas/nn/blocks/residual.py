"""Residual block: the ResNet basic block with kxk convolutions and a projection."""

from __future__ import annotations

import torch
from torch import nn

from mbnas.nn.blocks.common import check_kernel, check_stride, norm, relu
from mbnas.nn.blocks.registry import register_block
from mbnas.nn.layers import conv


@register_block("residual", dims=(2, 3))
class ResidualBlock(nn.Module):
    """conv-BN-ReLU, conv-BN, plus a 1x1 projection shortcut, then ReLU (He et al. 2016).

    As the authors' block: the shortcut is *always* a 1x1 convolution (no bias, no
    normalisation), even when the channel count is kept; a downscaling block strides
    in its second kxk convolution and in the projection.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int,
                 stride: int = 1, spatial_dims: int = 2) -> None:
        super().__init__()
        padding = check_kernel(kernel_size)
        check_stride(stride)
        conv_nd = conv(spatial_dims)
        self.conv1 = conv_nd(in_channels, out_channels, kernel_size, padding=padding,
                             bias=False)
        self.bn1 = norm(out_channels, spatial_dims=spatial_dims)
        self.conv2 = conv_nd(out_channels, out_channels, kernel_size, stride=stride,
                             padding=padding, bias=False)
        self.bn2 = norm(out_channels, spatial_dims=spatial_dims)
        self.shortcut = conv_nd(in_channels, out_channels, 1, stride=stride, bias=False)
        self.relu = relu()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        return self.relu(out + self.shortcut(x))
