"""Standard errors beside every search score and "within noise" (issue 35)."""

from __future__ import annotations

import math

import pytest

from mbnas.reporting.noise import (
    best_vs_start,
    difference_text,
    standard_error,
    thread_notes,
    within_noise,
)


def test_standard_error_is_the_sample_sd_over_root_n() -> None:
    assert standard_error([0.5]) is None
    assert standard_error([0.2, 0.4]) == pytest.approx(math.sqrt(0.02) / math.sqrt(2))
    assert standard_error([0.3, 0.3, 0.3]) == 0.0


def test_a_difference_smaller_than_its_standard_error_is_within_noise() -> None:
    # the demo: +0.0189 when the same network moved by 0.053 between thread counts
    assert within_noise(0.0189, 0.03, 0.02) is True
    assert within_noise(0.0189, 0.005, 0.005) is False
    assert within_noise(0.0189, None, None) is None
    assert within_noise(0.0, 0.0, 0.0) is True  # two constant scores: no difference
    assert difference_text(0.0189, 0.03, 0.02) == \
        "+0.0189, within noise (SE of the difference 0.0361)"
    assert "beyond noise" in difference_text(-0.2, 0.01, 0.01)


def test_best_vs_start_and_mixed_threads_from_a_search_log() -> None:
    log = [{"index": 0, "score": 0.70, "se": 0.02, "threads": 2},
           {"index": 1, "score": None},
           {"index": 2, "score": 0.72, "se": 0.01, "threads": 1}]
    line = best_vs_start(log)
    assert line.startswith("best 0.7200 ± 0.0100 SE (evaluation 3) vs the start "
                           "0.7000 ± 0.0200 SE: +0.0200, within noise")
    assert thread_notes([("run a", log)])[0].startswith(
        "run a: its runs trained with different CPU thread counts (1, 2)")
    assert thread_notes([("run b", [{"index": 0, "score": 0.7, "threads": 1}])]) == []
