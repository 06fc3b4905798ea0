"""Inception block: parallel branches (one factorised), concatenated, then a reduction."""

from __future__ import annotations

import torch
from torch import nn

from mbnas.nn.blocks.common import BasicConv, check_kernel, norm, relu, transition
from mbnas.nn.blocks.registry import register_block


@register_block("inception")
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
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int,
                 stride: int = 1) -> None:
        super().__init__()
        check_kernel(kernel_size)
        k, w = kernel_size, out_channels
        self.branch1 = BasicConv(in_channels, w, 1)
        self.branch_k = nn.Sequential(BasicConv(in_channels, w, 1), BasicConv(w, w, k), norm(w))
        self.branch_1xk = BasicConv(w, w, (1, k))
        self.branch_kx1 = BasicConv(w, w, (k, 1))
        self.branch_k_norm = norm(2 * w)
        self.branch_pool = nn.Sequential(
            nn.AvgPool2d(3, stride=1, padding=1), BasicConv(in_channels, w, 1)
        )
        self.reduction = transition(4 * w, w, stride)
        self.out = nn.Sequential(norm(w), relu())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mid = self.branch_k(x)
        factorised = self.branch_k_norm(torch.cat([self.branch_1xk(mid), self.branch_kx1(mid)], 1))
        out = torch.cat([self.branch1(x), factorised, self.branch_pool(x)], dim=1)
        return self.out(self.reduction(out))
