"""Genotype -> ``nn.Module``: the builder of MB-NAS networks (builder version 2).

The network is wired as the authors' ``NAS_WNet_blocks_convs`` (see
:mod:`mbnas.spaces.mbnas.genotype` for the encoding and docs/fidelity.md for the choices):

* stem ("node 0"): a fixed VGG block, 3x3, in_channels -> 32, full resolution;
* node l is a cell. Its input is node l-1's output with the outputs of node l's skip
  sources concatenated onto it *at node l-1's level* (C_in = C_{l-1} + sum C_skips).
  Then, by cell type: ``down``: ``block(C_in -> C_l, kernel c_l, stride 2)`` (the
  block's own stride-2 convolution halves the resolution; no pooling); ``same``:
  ``block(C_in -> C_l)``; ``up``: ``ConvTranspose2d(C_in, C_in // 2, 2, stride 2)``
  on the concatenation (no bias), then ``block(C_in // 2 -> C_l)``;
* head: 1x1 conv (with bias) from node 10's channels to ``n_classes`` (logits).

The authors' final non-scaling block before the head is built from the *last* node's
block and kernel (their ``blocks[d - 1]`` with d = 10), so it is node 10 here, not a
fixed block. Inputs must have a height and width divisible by ``2 ** genotype.depth()``.

``spatial_dims`` (2 by default) builds the same wiring for volumes with 3: every
convolution, normalisation and transposed convolution comes from
:mod:`mbnas.nn.layers`, and every node's block family must support 3D (its
registration's ``dims``). A 2D network is built exactly as before (same layers, same
parameter order, so the same initial weights for a seed).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from mbnas.errors import ConfigError, GenotypeError
from mbnas.nn.blocks import check_block_dims, get_block
from mbnas.nn.blocks.vgg import VGGBlock
from mbnas.nn.layers import check_dims, conv, conv_transpose
from mbnas.spaces.languages import codec_of
from mbnas.spaces.mbnas.baselines import Baseline
from mbnas.spaces.mbnas.genotype import BASE_CHANNELS, Genotype, level_text


class Cell(nn.Module):
    """One node: (upsample the concatenated input,) then run the block (strided if down)."""

    def __init__(self, cell_type: str, in_channels: int, channels: int, block: str,
                 kernel: int, spatial_dims: int = 2) -> None:
        super().__init__()
        self.resample: nn.Module = nn.Identity()
        stride = 2 if cell_type == "down" else 1
        if cell_type == "up":
            self.resample = conv_transpose(spatial_dims)(in_channels, in_channels // 2, 2,
                                                         stride=2, bias=False)
            in_channels //= 2
        check_block_dims(block, spatial_dims)
        dims = {} if spatial_dims == 2 else {"spatial_dims": spatial_dims}  # 2D-only plugins
        self.block = get_block(block)(in_channels, channels, kernel, stride=stride, **dims)

    def forward(self, x: torch.Tensor, skips: list[torch.Tensor]) -> torch.Tensor:
        if skips:
            x = torch.cat([x, *skips], dim=1)
        return self.block(self.resample(x))


class MBNASNet(nn.Module):
    """The network of one genotype. ``forward`` maps (B, C_in, H, W) to logits (B, K, H, W)
    (volumes: (B, C_in, D, H, W) to (B, K, D, H, W)).

    Attributes:
        genotype: The genotype it was built from.
        depth: The deepest level; every spatial size must be divisible by ``2 ** depth``.
        spatial_dims: 2 (images) or 3 (volumes).
    """

    def __init__(self, genotype: Genotype, in_channels: int, n_classes: int,
                 base_channels: int = BASE_CHANNELS, spatial_dims: int = 2) -> None:
        super().__init__()
        self.genotype = genotype
        self.depth = genotype.depth()
        self.spatial_dims = dims = check_dims(spatial_dims)
        chans = genotype.channels(base=base_channels)
        self.stem = VGGBlock(in_channels, chans[0], 3, spatial_dims=dims)
        self.sources = [genotype.skip_sources(i) for i in range(1, len(genotype.nodes) + 1)]
        self.cells = nn.ModuleList(
            Cell(node.channels, chans[i - 1] + sum(chans[j] for j in self.sources[i - 1]),
                 chans[i], node.block, node.kernel, dims)
            for i, node in enumerate(genotype.nodes, start=1)
        )
        self.head = conv(dims)(chans[-1], n_classes, 1)
        # Index of the last node that reads each node's output (to free features early).
        n = len(genotype.nodes)
        self._last_use = [i + 1 for i in range(n + 1)]
        for i, src in enumerate(self.sources, start=1):
            for j in src:
                self._last_use[j] = max(self._last_use[j], i)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        factor = 2 ** self.depth
        if x.dim() != 2 + self.spatial_dims or any(s % factor for s in x.shape[2:]):
            axes = ("H", "W") if self.spatial_dims == 2 else ("D", "H", "W")
            raise ConfigError(
                f"input of shape {tuple(x.shape)}: this network reaches level {self.depth} "
                f"({level_text(self.depth)}), so it needs (B, C, {', '.join(axes)}) with "
                f"{' and '.join(axes) if len(axes) == 2 else 'D, H and W'} divisible by "
                f"{factor}"
            )
        features: list[torch.Tensor | None] = [self.stem(x)]
        for i, cell in enumerate(self.cells, start=1):
            skips = [features[j] for j in self.sources[i - 1]]
            features.append(cell(features[i - 1], skips))
            for j in range(i):
                if self._last_use[j] <= i:
                    features[j] = None
        return self.head(features[-1])


def _check_channels(in_channels: int, n_classes: int) -> None:
    for what, value in (("in_channels", in_channels), ("n_classes", n_classes)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{what} must be a positive integer, got {value!r}")


def build_network(genotype: Genotype, in_channels: int, n_classes: int,
                  base_channels: int = BASE_CHANNELS, spatial_dims: int = 2) -> MBNASNet:
    """Build the network of a genotype.

    Args:
        genotype: Any valid genotype (its depth decides the input-size multiple).
        in_channels: Image channels (modalities).
        n_classes: Output channels (logits), background included.
        base_channels: Channels after the stem (paper: 32); node channels are
            ``min(base * 2**level, 512)``. Smaller values make CPU trials fast.
        spatial_dims: 2 (images, the default) or 3 (volumes).

    Raises:
        GenotypeError: If a node's block family does not support ``spatial_dims``.
    """
    _check_channels(in_channels, n_classes)
    if isinstance(base_channels, bool) or not isinstance(base_channels, int) or base_channels < 4:
        raise ConfigError(f"base_channels must be an integer >= 4, got {base_channels!r}")
    try:
        check_dims(spatial_dims)
    except ValueError as error:
        raise ConfigError(str(error)) from None
    return MBNASNet(genotype, in_channels, n_classes, base_channels, spatial_dims)


def build_model(architecture: Any, in_channels: int, n_classes: int,
                base_channels: int = BASE_CHANNELS, spatial_dims: int = 2) -> nn.Module:
    """Build a genotype's network, a named baseline, or an architecture of another
    language (through its codec's ``build``), so callers need not care which.

    ``base_channels`` applies to searched architectures; the baselines keep their
    published widths and are 2D only.

    Raises:
        GenotypeError: If ``architecture`` is none of these.
        ConfigError: If a baseline is asked for in 3D.
    """
    if isinstance(architecture, Genotype):
        return build_network(architecture, in_channels, n_classes, base_channels, spatial_dims)
    if isinstance(architecture, Baseline):
        if spatial_dims != 2:
            raise ConfigError(f"baseline {architecture.name!r} is 2D only, "
                              f"not {spatial_dims}D")
        _check_channels(in_channels, n_classes)
        return architecture.build(in_channels, n_classes)
    codec = codec_of(architecture)
    if codec is not None:
        _check_channels(in_channels, n_classes)
        return codec.build(architecture, in_channels, n_classes, base_channels, spatial_dims)
    raise GenotypeError(
        f"cannot build {architecture!r}: expected a Genotype or a Baseline"
    )
