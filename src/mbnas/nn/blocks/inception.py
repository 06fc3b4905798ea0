"""Inception block: parallel branches (one factorised), concatenated, then a reduction."""

from __future__ import annotations

import torch
from torch import nn

from mbnas.nn.blocks.common import BasicConv, check_kernel, norm, relu, transition
from mbnas.nn.blocks.registry import register_block
from mbnas.nn.layers import avg_pool, check_dims


@register_block("inception", dims=(2, 3))
class InceptionBlock(nn.Module):
    """The authors' Inception block (after Szegedy et al.'s Inception-v3 module E).

    Every branch is ``out_channels`` wide and every convolution is conv-BN-ReLU
    (torchvision's ``BasicConv2d``):

    * 1x1;
    * 1x1 -> kxk -> BN, then two factorised branches 1xk and kx1, concatenated -> BN
      (``2 * out_channels``);
    * 3x3 average pool -> 1x1.

    The ``4 * out_channels`` concatenation is reduced to ``out_channels`` by a 1x1
    conv-BN-ReLU (a 3x3 stride-2 one in a downscaling block), then BN and ReLU.

    In 3D the factorisation has one branch per axis (1x1xk, 1xkx1 and, added last,
    kx1x1), so the concatenation is ``5 * out_channels`` wide.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int,
                 stride: int = 1, spatial_dims: int = 2) -> None:
        super().__init__()
        check_kernel(kernel_size)
        k, w, dims = kernel_size, out_channels, check_dims(spatial_dims)

        def along(axis: int) -> tuple[int, ...]:  # k on one axis (counted from the last)
            return tuple(k if i == dims - 1 - axis else 1 for i in range(dims))

        self.branch1 = BasicConv(in_channels, w, 1, spatial_dims=dims)
        self.branch_k = nn.Sequential(BasicConv(in_channels, w, 1, spatial_dims=dims),
                                      BasicConv(w, w, k, spatial_dims=dims),
                                      norm(w, spatial_dims=dims))
        self.branch_1xk = BasicConv(w, w, along(0), spatial_dims=dims)
        self.branch_kx1 = BasicConv(w, w, along(1), spatial_dims=dims)
        if dims == 3:
            self.branch_kx1x1 = BasicConv(w, w, along(2), spatial_dims=dims)
        self.branch_k_norm = norm(dims * w, spatial_dims=dims)
        self.branch_pool = nn.Sequential(
            avg_pool(dims)(3, stride=1, padding=1), BasicConv(in_channels, w, 1, spatial_dims=dims)
        )
        self.reduction = transition((2 + dims) * w, w, stride, dims)
        self.out = nn.Sequential(norm(w, spatial_dims=dims), relu())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mid = self.branch_k(x)
        parts = [self.branch_1xk(mid), self.branch_kx1(mid)]
        if hasattr(self, "branch_kx1x1"):
            parts.append(self.branch_kx1x1(mid))
        factorised = self.branch_k_norm(torch.cat(parts, 1))
        out = torch.cat([self.branch1(x), factorised, self.branch_pool(x)], dim=1)
        return self.out(self.reduction(out))
