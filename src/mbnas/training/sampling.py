"""The order in which one pass over the training slices is drawn into batches.

With ``foreground_fraction`` 0 (the paper) a pass is a random permutation of the slices.
Otherwise, as nnU-Net oversamples foreground (``oversample_foreground_percent``, one
third), the last ``round(batch_size * foreground_fraction)`` places of every batch are
drawn, with replacement, from the slices whose label has foreground; a pass keeps its
length. Everything is drawn from the run's own generator, so a run reproduces.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch


def pass_order(n: int, batch_size: int, foreground_fraction: float,
               foreground: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Indices of one pass over ``n`` training slices, on the CPU.

    Args:
        n: Number of training slices.
        batch_size: Slices per batch.
        foreground_fraction: Share of each batch drawn from ``foreground``.
        foreground: Indices (CPU, int64) of the slices with foreground.
        generator: The run's batch-order generator.
    """
    order = torch.randperm(n, generator=generator)
    per_batch = round(batch_size * foreground_fraction)
    if not foreground_fraction or not per_batch or not len(foreground):
        return order
    places = torch.arange(n)
    forced = places % batch_size >= batch_size - per_batch
    picks = torch.randint(len(foreground), (int(forced.sum()),), generator=generator)
    order[forced] = foreground[picks]
    return order


def epoch_batches(n: int, protocol: Any, foreground: torch.Tensor,
                  generator: torch.Generator, device: torch.device | str = "cpu"
                  ) -> Iterator[torch.Tensor]:
    """One epoch's batches of training-slice indices, on ``device``.

    ``protocol.passes_per_epoch(n)`` passes in :func:`pass_order`'s order, each cut into
    ``protocol.batch_size`` batches; a last batch of one slice is skipped where there are
    two or more (BatchNorm needs two samples). Every trainer draws its epochs here, so a
    fused, a supernet and a plain run see the same batches for one generator.
    """
    bs = protocol.batch_size
    for _ in range(protocol.passes_per_epoch(n)):
        order = pass_order(n, bs, protocol.foreground_fraction, foreground,
                           generator).to(device)
        for start in range(0, n, bs):
            idx = order[start:start + bs]
            if len(idx) < 2 and n >= 2:
                continue
            yield idx


def foreground_slices(labels: torch.Tensor) -> torch.Tensor:
    """Indices (CPU, int64) of the slices of ``labels`` (N, H, W) with any foreground."""
    return torch.nonzero(labels.reshape(len(labels), -1).amax(dim=1) > 0).flatten().cpu()
