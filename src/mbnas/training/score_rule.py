"""The run-score rule: how one training run's per-epoch validation Dice becomes its score.

The paper (section 2.3) scores a run by the mean validation Dice over its last epochs,
which smooths the epoch-to-epoch noise of a short training. The protocol's
``score_fraction`` (0.2: the last 20%) says how many: ``round(epochs * fraction)``, at
least one. Both trainers (one run at a time, :mod:`mbnas.training.train`, and the fused
one, :mod:`mbnas.training.fused`) and the protocol's ``score_epochs`` call these two
functions, so the rule is written once.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def score_epochs(epochs: int, score_fraction: float) -> int:
    """How many final epochs of ``epochs`` are averaged into the run score (at least one)."""
    return max(1, round(epochs * score_fraction))


def run_score(val_dice: Sequence[float], score_fraction: float) -> float:
    """The run score of a training: the mean of the last :func:`score_epochs` values.

    Args:
        val_dice: The validation Dice after each epoch, in epoch order (every epoch of
            the run: its length is the run's epoch count).
        score_fraction: The protocol's fraction of final epochs averaged.

    Raises:
        ValueError: If ``val_dice`` is empty (a run of no epoch has no score).
    """
    values = [float(v) for v in val_dice]
    if not values:
        raise ValueError("a run score needs the validation Dice of at least one epoch")
    return float(np.mean(values[-score_epochs(len(values), score_fraction):]))
