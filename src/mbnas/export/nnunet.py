"""The network class nnU-Net v2 builds from a plans configuration written by mbnas.

nnU-Net v2 builds a configuration's network with
``get_network_from_plans(architecture.network_class_name, architecture.arch_kwargs, ...)``:
it imports the class named by ``network_class_name`` and calls it with
``input_channels``, ``num_classes``, ``deep_supervision`` and the ``arch_kwargs``.
``mbnas export nnunet`` writes a configuration naming :class:`MBNASNetwork`, with the
genotype in ``arch_kwargs``, so nnU-Net's own ``nnUNetv2_train`` trains the found network
with no fork and no file copied into nnU-Net.

Deep supervision: nnU-Net's default trainer computes its loss on one output per scale of
its pooling strides (``arch_kwargs.strides``, full resolution first) and switches the
extra outputs on and off through ``network.decoder.deep_supervision``. The network of a
genotype has a single output, at full resolution; with deep supervision on, the lower
scales are that output average-pooled to each scale, so nnU-Net's loss runs unchanged and
the network stays exactly the genotype's network (no extra head, the same parameters).
``nnUNetTrainerNoDeepSupervision`` works as well and trains on the full-resolution output
only.

This module imports only torch and mbnas, so nnU-Net can import it anywhere mbnas is
installed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from mbnas.errors import GenotypeError
from mbnas.spaces.mbnas import architecture_from_dict, build_model
from mbnas.spaces.mbnas.genotype import BASE_CHANNELS

#: ``network_class_name`` of the configurations written by ``mbnas export nnunet``.
CLASS_NAME = "mbnas.export.nnunet.MBNASNetwork"


class _DeepSupervisionSwitch(nn.Module):
    """Holds nnU-Net's ``decoder.deep_supervision`` flag; no parameters."""

    def __init__(self, enabled: bool) -> None:
        super().__init__()
        self.deep_supervision = bool(enabled)


def ds_factors(strides: Sequence[Sequence[int]]) -> list[tuple[int, ...]]:
    """Downsampling factor per axis of each deep supervision output, full resolution first.

    nnU-Net's trainer supervises the scales ``1 / cumprod(strides)`` without the deepest
    one; the same list here, as integer factors.
    """
    factors: list[tuple[int, ...]] = []
    current = [1] * len(strides[0])
    for stride in strides[:-1]:
        current = [c * int(s) for c, s in zip(current, stride)]
        factors.append(tuple(current))
    return factors


class MBNASNetwork(nn.Module):
    """A genotype's network, built the way nnU-Net v2 builds a plans configuration's network.

    Args:
        input_channels: Input channels (nnU-Net passes the dataset's modalities).
        num_classes: Output channels (nnU-Net's segmentation heads).
        genotype: The genotype as a dict (``Genotype.to_dict()``).
        base_channels: Channels after the stem (the paper: 32).
        strides: nnU-Net's pooling strides of the inherited configuration; they define
            the scales of the deep supervision outputs only.
        deep_supervision: Return one output per scale (a list, full resolution first)
            instead of the full-resolution logits.

    Raises:
        GenotypeError: If ``genotype`` is not a valid genotype.
    """

    def __init__(self, input_channels: int, num_classes: int, genotype: Mapping[str, Any],
                 base_channels: int = BASE_CHANNELS, strides: Sequence[Sequence[int]] = ((1, 1),),
                 deep_supervision: bool = False) -> None:
        super().__init__()
        if not isinstance(genotype, Mapping):
            raise GenotypeError(f"arch_kwargs.genotype must be a genotype dict, got {genotype!r}")
        # Read and built by the architecture's language (its codec): a genotype here.
        self.architecture = architecture_from_dict(dict(genotype))
        self.network = build_model(self.architecture, int(input_channels), int(num_classes),
                                   int(base_channels))
        self.ds_factors = ds_factors([list(s) for s in strides]) if strides else [(1, 1)]
        self.decoder = _DeepSupervisionSwitch(deep_supervision)

    @property
    def genotype(self) -> Any:
        return self.architecture

    def forward(self, x: torch.Tensor) -> torch.Tensor | list[torch.Tensor]:
        logits = self.network(x)
        if not self.decoder.deep_supervision:
            return logits
        return [logits if all(f == 1 for f in factor) else F.avg_pool2d(logits, factor, factor)
                for factor in self.ds_factors]


__all__ = ["CLASS_NAME", "MBNASNetwork", "ds_factors"]
