"""One number format for every table of a report: p-values, scores and mean ± std.

Every table (Table 1, the statistics, the domain-shift and nnU-Net comparisons) prints
p-values through :func:`p_text` and scores through :func:`mean_std_text`, so the same
number never reads "1" in one table and "1.0000" in another.
"""

from __future__ import annotations

import math

__all__ = ["NA", "P_DECIMALS", "mean_std_text", "p_text", "score_text"]

NA = "n/a"
#: Decimals of a p-value; smaller values print as "< 0.0001".
P_DECIMALS = 4


def _missing(x: float | None) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def p_text(p: float | None) -> str:
    """``0.0312``, ``1.0000`` or ``< 0.0001``; ``n/a`` when the test was not run."""
    if _missing(p):
        return NA
    assert p is not None
    floor = 10.0 ** -P_DECIMALS
    return f"< {floor:.{P_DECIMALS}f}" if p < floor else f"{p:.{P_DECIMALS}f}"


def score_text(x: float | None, decimals: int = 4, sign: bool = False) -> str:
    """A score (Dice, difference) with fixed decimals; ``n/a`` when missing."""
    if _missing(x):
        return NA
    return f"{x:{'+' if sign else ''}.{decimals}f}"


def mean_std_text(mean: float, std: float | None, decimals: int, std_decimals: int) -> str:
    """``0.8123 ± 0.012``; just ``0.8123`` when there is no spread (one seed)."""
    if std is None or math.isnan(std):
        return f"{mean:.{decimals}f}"
    return f"{mean:.{decimals}f} ± {std:.{std_decimals}f}"
