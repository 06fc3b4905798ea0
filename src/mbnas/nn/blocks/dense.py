"""Dense block: DenseNet bottleneck layers whose inputs are concatenated, then a transition."""

from __future__ import annotations

import torch
from torch import nn

from mbnas.nn.blocks.common import check_kernel, norm, relu, transition
from mbnas.nn.blocks.registry import register_block
from mbnas.nn.layers import conv

N_LAYERS = 2


@register_block("dense", dims=(2, 3))
class DenseBlock(nn.Module):
    """``N_LAYERS`` (2) bottleneck layers with growth rate ``out_channels``, as the authors'.

    Layer i sees the concatenation of the block input and all earlier layer outputs
    (Huang et al.) and is BN-ReLU-1x1 conv (the bottleneck, ``out_channels`` wide),
    BN-ReLU-kxk conv (``out_channels`` new features). The transition maps the final
    concatenation (``in + N_LAYERS * out``) to ``out_channels``: a 1x1 conv-BN-ReLU, or
    for a downscaling block a 3x3 stride-2 one; then BN and ReLU once more (the
    authors' block ends so).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int,
                 stride: int = 1, spatial_dims: int = 2) -> None:
        super().__init__()
        padding = check_kernel(kernel_size)
        conv_nd, dims = conv(spatial_dims), spatial_dims
        self.layers = nn.ModuleList()
        width = in_channels
        for _ in range(N_LAYERS):
            self.layers.append(nn.Sequential(
                norm(width, spatial_dims=dims), relu(),
                conv_nd(width, out_channels, 1, bias=False),
                norm(out_channels, spatial_dims=dims), relu(),
                conv_nd(out_channels, out_channels, kernel_size, padding=padding, bias=False),
            ))
            width += out_channels
        self.transition = transition(width, out_channels, stride, dims)
        self.out = nn.Sequential(norm(out_channels, spatial_dims=dims), relu())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [x]
        for layer in self.layers:
            features.append(layer(torch.cat(features, dim=1)))
        return self.out(self.transition(torch.cat(features, dim=1)))
