"""The intensity normalisation of each channel: a choice, recorded with the protocol.

Schemes (``Protocol.normalisation``, one name per channel or one for all):

* ``default``: ``ct`` for CT channels, ``zscore`` for every other (nnU-Net's choice);
* ``ct``: clip to the training set's foreground percentiles, z-score with its foreground
  mean and standard deviation (statistics from the training cases only);
* ``zscore``: z-score per case, over all its voxels;
* ``percentile``: per case, clip to the case's own 0.5 and 99.5 percentiles, then
  z-score: robust to the outliers and bright spots one scanner has and another has not.

Preprocessing (``mbnas.data.preprocess``) and `mbnas predict` apply the same functions.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mbnas.errors import ConfigError

CHOICES = ("default", "ct", "zscore", "percentile")
PER_CASE = ("zscore", "percentile")
#: Percentiles of the ``percentile`` scheme.
CASE_PERCENTILES = (0.5, 99.5)


def resolve_schemes(choice: Sequence[str], ct_channels: Sequence[bool]) -> list[str]:
    """The scheme of each channel: ``choice`` has one name per channel, one for all, or
    none (every channel ``default``).

    Raises:
        ConfigError: for an unknown name or a count that fits neither.
    """
    n = len(ct_channels)
    names = list(choice) or ["default"]
    if len(names) == 1:
        names = names * n
    if len(names) != n:
        raise ConfigError(f"normalisation names {len(names)} schemes for {n} channel(s); "
                          "give one per channel or one for all")
    bad = [x for x in names if x not in CHOICES]
    if bad:
        raise ConfigError(f"unknown normalisation {bad[0]!r}; choose one of {', '.join(CHOICES)}")
    return [("ct" if is_ct else "zscore") if x == "default" else x
            for x, is_ct in zip(names, ct_channels, strict=True)]


def normalise_case(x: np.ndarray, scheme: str) -> None:
    """Normalise one channel of one case in place with a per-case scheme."""
    if scheme == "percentile":
        lo, hi = np.percentile(x, CASE_PERCENTILES)
        np.clip(x, lo, hi, out=x)
    elif scheme != "zscore":
        raise ConfigError(f"{scheme!r} is not a per-case normalisation")
    _standardise(x, float(x.mean(dtype=np.float64)), float(x.std(dtype=np.float64)))


def normalise_ct(x: np.ndarray, clip: tuple[float, float], mean: float, std: float) -> None:
    """Clip to ``clip`` and z-score with the dataset's foreground ``mean`` and ``std``,
    in place (nnU-Net's CT scheme; the statistics are in ``preprocess.json``)."""
    np.clip(x, clip[0], clip[1], out=x)
    _standardise(x, mean, std)


def _standardise(x: np.ndarray, mean: float, std: float) -> None:
    """``(x - mean) / std`` in place, in float32 (a constant channel: divided by 1e-8)."""
    x -= np.float32(mean)
    x /= np.float32(max(std, 1e-8))
