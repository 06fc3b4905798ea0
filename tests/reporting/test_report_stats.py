"""Friedman and Wilcoxon + Holm, checked against SciPy on fixed numbers."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from mbnas.reporting.stats import best_searched, friedman, holm, wilcoxon_vs_best

BLOCKS = [(s, f) for s in (0, 1) for f in range(5)]
DICE = {
    "MB-NAS": [0.91, 0.93, 0.90, 0.94, 0.92, 0.915, 0.925, 0.905, 0.935, 0.93],
    "Macro-NAS": [0.90, 0.92, 0.91, 0.93, 0.90, 0.905, 0.915, 0.89, 0.93, 0.92],
    "U-Net": [0.89, 0.90, 0.88, 0.92, 0.91, 0.885, 0.90, 0.87, 0.915, 0.905],
    "ResU-Net": [0.87, 0.91, 0.86, 0.90, 0.88, 0.875, 0.89, 0.865, 0.90, 0.895],
}
KINDS = {"MB-NAS": "searched", "Macro-NAS": "searched", "U-Net": "baseline",
         "ResU-Net": "baseline"}


@pytest.fixture
def evals(make_runs):
    return [make_runs(n, dict(zip(BLOCKS, v, strict=True)), KINDS[n]) for n, v in DICE.items()]


def test_holm_known_example():
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5, 0.6]) == pytest.approx([1.0, 1.0])  # capped at 1
    out = holm([0.02, math.nan, 0.01])  # NaN kept, m = 2
    assert out[0] == pytest.approx(0.02) and math.isnan(out[1]) and out[2] == pytest.approx(0.02)
    assert holm([]) == []


def test_friedman_matches_scipy(evals):
    res = friedman(evals)
    ref = stats.friedmanchisquare(*DICE.values())
    assert res.ok and res.n_blocks == 10 and res.df == 3
    assert res.statistic == pytest.approx(ref.statistic)
    assert res.p_value == pytest.approx(ref.pvalue)
    assert res.models == tuple(DICE)


def test_friedman_uses_blocks_shared_by_all(evals, make_runs):
    runs = dict(zip(BLOCKS[1:], DICE["ResU-Net"][1:], strict=True))  # (0, 0) missing
    res = friedman([*evals[:3], make_runs("ResU-Net", runs, "baseline")])
    ref = stats.friedmanchisquare(*(v[1:] for v in DICE.values()))
    assert res.n_blocks == 9 and res.statistic == pytest.approx(ref.statistic)


def test_wilcoxon_matches_scipy_with_holm(evals):
    assert best_searched(evals).name == "MB-NAS"
    rep = wilcoxon_vs_best(evals)
    assert rep.best == "MB-NAS"
    assert [c.other for c in rep.comparisons] == ["Macro-NAS", "U-Net", "ResU-Net"]
    best = np.array(DICE["MB-NAS"])
    raw = []
    for c in rep.comparisons:
        other = np.array(DICE[c.other])
        ref = stats.wilcoxon(best, other)
        assert c.ok and c.n_pairs == 10
        assert c.statistic == pytest.approx(ref.statistic)
        assert c.p_value == pytest.approx(ref.pvalue)
        assert c.mean_difference == pytest.approx(np.mean(best - other))
        assert c.mean_difference > 0
        raw.append(ref.pvalue)
    assert [c.p_holm for c in rep.comparisons] == pytest.approx(holm(raw))
    assert all(c.p_holm >= c.p_value for c in rep.comparisons)


def test_wilcoxon_named_reference(evals):
    rep = wilcoxon_vs_best(evals, best="U-Net")
    c = next(c for c in rep.comparisons if c.other == "MB-NAS")
    assert c.mean_difference < 0  # U-Net - MB-NAS


def test_not_enough_data(make_runs):
    two = [make_runs("A", {(0, 0): 0.9, (0, 1): 0.8}), make_runs("B", {(0, 0): 0.7}, "baseline")]
    res = friedman(two)
    assert not res.ok and "at least 3 models" in res.reason
    rep = wilcoxon_vs_best(two)
    assert rep.best == "A"
    (c,) = rep.comparisons
    assert not c.ok and c.n_pairs == 1 and "not enough data" in c.reason and c.p_holm is None
    three = [*two, make_runs("C", {(0, 1): 0.5}, "baseline")]
    res = friedman(three)
    assert not res.ok and res.n_blocks == 0 and "not enough data" in res.reason
    alone = wilcoxon_vs_best(two[:1])
    assert alone.comparisons == () and "no other model" in alone.reason
    no_search = wilcoxon_vs_best([make_runs("U", {(0, 0): 0.5}, "baseline")])
    assert no_search.best is None and "no searched model" in no_search.reason


def test_ties(make_runs):
    runs = {(0, f): 0.8 for f in range(4)}
    same = [make_runs(n, runs) for n in "ABC"]
    res = friedman(same)
    assert not res.ok and "tie" in res.reason
    rep = wilcoxon_vs_best(same)
    assert all(c.ok and c.p_value == 1.0 and "zero" in c.reason for c in rep.comparisons)


def test_smallest_attainable_p_is_given_beside_each_test(make_runs):
    """Issue 35 item 6: with n pairs the smallest two-sided Wilcoxon p is 2/2^n; Friedman's
    smallest p is that of every block ranking the models alike (chi-square approximation,
    as the test is computed); both are shown with a note when above 0.05."""
    two = {(0, 0): 0.9, (0, 1): 0.8}
    evals = [make_runs("A", two), make_runs("B", {k: v - 0.1 for k, v in two.items()},
                                                  "baseline"),
             make_runs("C", {k: v - 0.2 for k, v in two.items()}, "baseline")]
    fried = friedman(evals)
    assert fried.ok and fried.n_blocks == 2
    # every block ranks A > B > C: the largest statistic and so the smallest p there is
    assert fried.min_p_value == pytest.approx(fried.p_value)
    assert fried.min_p_value == pytest.approx(stats.chi2.sf(2 * 2, 2))
    assert fried.to_dict()["min_p_value"] == fried.min_p_value
    rep = wilcoxon_vs_best(evals)
    for c in rep.comparisons:
        assert c.n_pairs == 2 and c.min_p_value == pytest.approx(2 / 2 ** 2)
        assert c.p_value == pytest.approx(c.min_p_value)  # scipy's exact test agrees
        assert c.to_dict()["min_p_value"] == c.min_p_value
    big = wilcoxon_vs_best([make_runs(n, dict(zip(BLOCKS, v, strict=True)), KINDS[n])
                            for n, v in DICE.items()])
    assert [c.min_p_value for c in big.comparisons] == pytest.approx([2 / 2 ** 10] * 3)


def test_the_page_shows_the_smallest_attainable_p(make_runs, tmp_path):
    from mbnas.reporting.card import ReportingCard
    from mbnas.reporting.html import build_html

    two = {(0, 0): 0.9, (0, 1): 0.8}
    evals = [make_runs("A", two), make_runs("B", {k: v - 0.1 for k, v in two.items()},
                                                  "baseline"),
             make_runs("C", {k: v - 0.2 for k, v in two.items()}, "baseline")]
    page = build_html(tmp_path / "r.html", title="t", table=None, card=ReportingCard(),
                      friedman=friedman(evals),
                      wilcoxon=wilcoxon_vs_best(evals)).read_text()
    assert page.count("smallest attainable p") == 3  # Friedman and two Wilcoxon rows
    assert "cannot reach p &lt; 0.05" in page
