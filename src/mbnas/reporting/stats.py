"""Significance tests of the paper's section 3.4, on the paired per-(seed, fold) Dice.

* :func:`friedman`: the Friedman test over all models; a block is one (seed, fold)
  run present for every model.
* :func:`wilcoxon_vs_best`: Wilcoxon signed-rank tests of the best searched network
  against each other model on their shared (seed, fold) runs, with the Holm step-down
  correction over the comparisons (:func:`holm`).

Neither raises on too little data: the result says ``ok=False`` and why. Each gives the
smallest p-value it could reach on its data (``min_p_value``), so that a test on 2 pairs
(smallest two-sided Wilcoxon p: 2/2^2 = 0.5) is not read as evidence of no difference.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from mbnas.reporting.report_data import ModelEvaluation, ReportError
from mbnas.reporting.table import check_models

__all__ = ["FriedmanResult", "Comparison", "WilcoxonReport", "friedman", "wilcoxon_vs_best",
           "holm", "best_searched", "MIN_BLOCKS", "MIN_PAIRS", "ALPHA", "friedman_min_p",
           "wilcoxon_min_p", "min_p_note"]

#: The fewest (seed, fold) blocks the Friedman test is run on.
MIN_BLOCKS = 2
#: The fewest (seed, fold) pairs a Wilcoxon test is run on.
MIN_PAIRS = 2


@dataclass(frozen=True)
class FriedmanResult:
    """The Friedman test over all models (chi-square with ``df`` = models - 1)."""

    ok: bool
    models: tuple[str, ...]
    n_blocks: int
    df: int
    statistic: float | None = None
    p_value: float | None = None
    reason: str = ""
    min_p_value: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {**vars(self), "models": list(self.models)}


@dataclass(frozen=True)
class Comparison:
    """One Wilcoxon signed-rank test: the best searched network vs ``other``.

    ``mean_difference`` is mean(best - other) over the pairs: positive means the best
    searched network scored a higher Dice.
    """

    other: str
    ok: bool
    n_pairs: int
    statistic: float | None = None
    p_value: float | None = None
    p_holm: float | None = None
    mean_difference: float | None = None
    reason: str = ""
    min_p_value: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(vars(self))


@dataclass(frozen=True)
class WilcoxonReport:
    """The post-hoc tests: ``best`` (None when there is none) against each other model."""

    best: str | None
    comparisons: tuple[Comparison, ...] = ()
    reason: str = ""
    correction: str = "Holm step-down over the comparisons that ran"

    def to_dict(self) -> dict[str, Any]:
        return {"best": self.best, "comparisons": [c.to_dict() for c in self.comparisons],
                "reason": self.reason, "correction": self.correction}


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-Bonferroni step-down adjusted p-values, in the input order.

    The i-th smallest of m p-values is multiplied by (m - i + 1), the running maximum is
    taken so that adjusted values never decrease, and the result is capped at 1. NaN
    entries are kept as NaN and do not count towards m.
    """
    p = np.asarray(p_values, dtype=float)
    out = np.full(p.shape, math.nan)
    idx = np.flatnonzero(~np.isnan(p))
    if idx.size == 0:
        return out.tolist()
    if np.any((p[idx] < 0) | (p[idx] > 1)):
        raise ReportError(f"p-values must lie in [0, 1], got {p_values}")
    order = idx[np.argsort(p[idx], kind="stable")]
    m = order.size
    scaled = p[order] * (m - np.arange(m))
    out[order] = np.minimum(np.maximum.accumulate(scaled), 1.0)
    return out.tolist()


#: The significance level the notes beside the tests refer to.
ALPHA = 0.05


def wilcoxon_min_p(n_pairs: int) -> float:
    """The smallest two-sided p of a Wilcoxon signed-rank test on ``n_pairs`` non-zero
    differences: all of one sign, the most extreme of the 2^n equally likely sign
    patterns, counted on both sides (2/2^n)."""
    return min(1.0, 2.0 / 2.0 ** n_pairs)


def friedman_min_p(n_blocks: int, n_models: int) -> float:
    """The smallest p of the Friedman test as computed (chi-square approximation) on
    ``n_blocks`` blocks of ``n_models`` models: every block ranks the models alike, the
    statistic is then ``n_blocks * (n_models - 1)``."""
    return float(stats.chi2.sf(n_blocks * (n_models - 1), n_models - 1))


def _shared_blocks(evals: Sequence[ModelEvaluation]) -> list[tuple[int, int]]:
    runs = [e.paired_dice() for e in evals]
    common = set(runs[0]).intersection(*runs[1:])
    return sorted(common)


def friedman(evals: Sequence[ModelEvaluation]) -> FriedmanResult:
    """Friedman test of all models on the run-level Dice of the (seed, fold) runs they share."""
    check_models(evals)
    models = tuple(e.name for e in evals)
    df = len(models) - 1
    if len(models) < 3:
        return FriedmanResult(False, models, 0, df, reason=(
            f"the Friedman test needs at least 3 models, got {len(models)}; "
            "see the Wilcoxon test"))
    blocks = _shared_blocks(evals)
    if len(blocks) < MIN_BLOCKS:
        return FriedmanResult(False, models, len(blocks), df, reason=(
            f"not enough data: {len(blocks)} (seed, fold) runs shared by all models, "
            f"at least {MIN_BLOCKS} needed"))
    samples = [[e.paired_dice()[b] for b in blocks] for e in evals]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        res = stats.friedmanchisquare(*samples)
    stat, p = float(res.statistic), float(res.pvalue)
    if not (math.isfinite(stat) and math.isfinite(p)):
        return FriedmanResult(False, models, len(blocks), df, reason=(
            "all models tie within every (seed, fold) block; the test is undefined"))
    return FriedmanResult(True, models, len(blocks), df, stat, p,
                          min_p_value=friedman_min_p(len(blocks), len(models)))


def min_p_note(min_p: float | None) -> str:
    """The words shown beside a test: its smallest attainable p, and when that is above
    :data:`ALPHA`, that the test cannot reach significance on this data."""
    if min_p is None:
        return ""
    text = f"smallest attainable p = {min_p:.3g}"
    if min_p >= ALPHA:
        text += f"; with this few runs the test cannot reach p < {ALPHA:g}"
    return text


def best_searched(evals: Sequence[ModelEvaluation]) -> ModelEvaluation | None:
    """The searched model with the highest mean Dice (Table 1's DSC), or None."""
    searched = [e for e in evals if e.kind == "searched" and not math.isnan(e.mean_dice())]
    return max(searched, key=lambda e: e.mean_dice()) if searched else None


def _compare(best: ModelEvaluation, other: ModelEvaluation) -> Comparison:
    a, b = best.paired_dice(), other.paired_dice()
    pairs = sorted(set(a) & set(b))
    if len(pairs) < MIN_PAIRS:
        return Comparison(other.name, False, len(pairs), reason=(
            f"not enough data: {len(pairs)} shared (seed, fold) runs, "
            f"at least {MIN_PAIRS} needed"))
    x = np.array([a[k] for k in pairs])
    y = np.array([b[k] for k in pairs])
    diff = float(np.mean(x - y))
    # scipy drops zero differences (zero_method "wilcox"): the test runs on the others
    min_p = wilcoxon_min_p(int(np.count_nonzero(x != y)))
    if np.all(x == y):
        # scipy returns p=1 with a divide warning here; say why instead.
        return Comparison(other.name, True, len(pairs), 0.0, 1.0, None, diff,
                          "all paired differences are zero", min_p_value=min_p)
    res = stats.wilcoxon(x, y)
    return Comparison(other.name, True, len(pairs), float(res.statistic), float(res.pvalue),
                      None, diff, min_p_value=min_p)


def wilcoxon_vs_best(evals: Sequence[ModelEvaluation], best: str | None = None
                     ) -> WilcoxonReport:
    """Wilcoxon signed-rank tests of the best searched network against every other model.

    Args:
        evals: All models of the report.
        best: Name of the reference model; default: :func:`best_searched`.

    Returns:
        A report with one :class:`Comparison` per other model; the p-values of the
        comparisons that ran are Holm-adjusted together.
    """
    check_models(evals)
    if best is None:
        ref = best_searched(evals)
        if ref is None:
            return WilcoxonReport(None, reason="no searched model with scores to test")
    else:
        matches = [e for e in evals if e.name == best]
        if not matches:
            raise ReportError(
                f"model {best!r} is not in the report; models: {[e.name for e in evals]}")
        ref = matches[0]
    others = [e for e in evals if e.name != ref.name]
    if not others:
        return WilcoxonReport(ref.name, reason="not enough data: no other model to compare")
    comps = [_compare(ref, o) for o in others]
    adjusted = holm([c.p_value if c.ok and c.p_value is not None else math.nan for c in comps])
    comps = [
        Comparison(c.other, c.ok, c.n_pairs, c.statistic, c.p_value,
                   None if math.isnan(q) else q, c.mean_difference, c.reason, c.min_p_value)
        for c, q in zip(comps, adjusted, strict=True)
    ]
    return WilcoxonReport(ref.name, tuple(comps))
