"""The order in which one pass over the training slices is drawn into batches.

With ``foreground_fraction`` 0 (the paper) a pass is a random permutation of the slices.
Otherwise, as nnU-Net oversamples foreground (``oversample_foreground_percent``, one
third), the last ``round(batch_size * foreground_fraction)`` places of every batch are
drawn, with replacement, from the slices whose label has foreground; a pass keeps its
length. Everything is drawn from the run's own generator, so a run reproduces.
"""

from __future__ import annotations

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


def foreground_slices(labels: torch.Tensor) -> torch.Tensor:
    """Indices (CPU, int64) of the slices of ``labels`` (N, H, W) with any foreground."""
    return torch.nonzero(labels.reshape(len(labels), -1).amax(dim=1) > 0).flatten().cpu()
