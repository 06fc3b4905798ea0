"""Genotype -> ``nn.Module``: the builder of MB-NAS networks.

The network (see :mod:`mbnas.space.genotype` for the encoding):

* stem ("node 0"): 3x3 conv + BatchNorm + LeakyReLU(0.01), in_channels -> 32, full
  resolution;
* node l is a cell: its input is node l-1's output, resampled by the cell type:
  ``down`` = MaxPool2d(2); ``up`` = ConvTranspose2d(C_{l-1}, C_l, 2, stride 2);
  ``same`` = nothing. The output features of the node's skip sources are concatenated
  to the resampled input, then the block runs:
  ``block(C_resampled + sum(C_skips) -> C_l, kernel c_l)``;
* head: 1x1 conv from node 10's channels to ``n_classes`` (logits, no activation).

Convolutions followed by BatchNorm have no bias. Inputs must have a height and width
divisible by ``2 ** genotype.depth()`` (16 for the U-Net preset).
"""

from __future__ import annotations

import torch
from torch import nn

from mbnas.errors import ConfigError, GenotypeError
from mbnas.space.baselines import Baseline
from mbnas.space.blocks import get_block
from mbnas.space.blocks.common import ConvBNAct
from mbnas.space.genotype import BASE_CHANNELS, Genotype, level_text


class Cell(nn.Module):
    """One node: resample the predecessor, concatenate skips, run the block."""

    def __init__(self, cell_type: str, prev_channels: int, channels: int,
                 skip_channels: int, block: str, kernel: int) -> None:
        super().__init__()
        self.resample: nn.Module
        if cell_type == "down":
            self.resample = nn.MaxPool2d(2)
            resampled = prev_channels
        elif cell_type == "up":
            self.resample = nn.ConvTranspose2d(prev_channels, channels, 2, stride=2)
            resampled = channels
        else:
            self.resample = nn.Identity()
            resampled = prev_channels
        self.block = get_block(block)(resampled + skip_channels, channels, kernel)

    def forward(self, x: torch.Tensor, skips: list[torch.Tensor]) -> torch.Tensor:
        x = self.resample(x)
        if skips:
            x = torch.cat([x, *skips], dim=1)
        return self.block(x)


class MBNASNet(nn.Module):
    """The network of one genotype. ``forward`` maps (B, C_in, H, W) to logits (B, K, H, W).

    Attributes:
        genotype: The genotype it was built from.
        depth: The deepest level; H and W must be divisible by ``2 ** depth``.
    """

    def __init__(self, genotype: Genotype, in_channels: int, n_classes: int,
                 base_channels: int = BASE_CHANNELS) -> None:
        super().__init__()
        self.genotype = genotype
        self.depth = genotype.depth()
        chans = genotype.channels(base=base_channels)
        self.stem = ConvBNAct(in_channels, chans[0], 3)
        self.sources = [genotype.skip_sources(i) for i in range(1, len(genotype.nodes) + 1)]
        self.cells = nn.ModuleList(
            Cell(node.channels, chans[i - 1], chans[i],
                 sum(chans[j] for j in self.sources[i - 1]), node.block, node.kernel)
            for i, node in enumerate(genotype.nodes, start=1)
        )
        self.head = nn.Conv2d(chans[-1], n_classes, 1)
        # Index of the last node that reads each node's output (to free features early).
        n = len(genotype.nodes)
        self._last_use = [i + 1 for i in range(n + 1)]
        for i, src in enumerate(self.sources, start=1):
            for j in src:
                self._last_use[j] = max(self._last_use[j], i)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        factor = 2 ** self.depth
        if x.dim() != 4 or x.shape[-2] % factor or x.shape[-1] % factor:
            raise ConfigError(
                f"input of shape {tuple(x.shape)}: this network reaches level {self.depth} "
                f"({level_text(self.depth)}), so it needs (B, C, H, W) with H and W "
                f"divisible by {factor}"
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
                  base_channels: int = BASE_CHANNELS) -> MBNASNet:
    """Build the network of a genotype.

    Args:
        genotype: Any valid genotype (its depth decides the input-size multiple).
        in_channels: Image channels (modalities).
        n_classes: Output channels (logits), background included.
        base_channels: Channels after the stem (paper: 32); node channels are
            ``min(base * 2**level, 512)``. Smaller values make CPU trials fast.
    """
    _check_channels(in_channels, n_classes)
    if isinstance(base_channels, bool) or not isinstance(base_channels, int) or base_channels < 4:
        raise ConfigError(f"base_channels must be an integer >= 4, got {base_channels!r}")
    return MBNASNet(genotype, in_channels, n_classes, base_channels)


def build_model(architecture: Genotype | Baseline, in_channels: int, n_classes: int,
                base_channels: int = BASE_CHANNELS) -> nn.Module:
    """Build a genotype's network or a named baseline, so callers need not care which.

    ``base_channels`` applies to genotypes; the baselines keep their published widths.

    Raises:
        GenotypeError: If ``architecture`` is neither a Genotype nor a Baseline.
    """
    if isinstance(architecture, Genotype):
        return build_network(architecture, in_channels, n_classes, base_channels)
    if isinstance(architecture, Baseline):
        _check_channels(in_channels, n_classes)
        return architecture.build(in_channels, n_classes)
    raise GenotypeError(
        f"cannot build {architecture!r}: expected a Genotype or a Baseline"
    )
