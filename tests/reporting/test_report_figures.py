"""Figures: files are written and show what they should (colours of the contours)."""

from __future__ import annotations

import dataclasses
import warnings

import matplotlib.image as mpimg
import numpy as np
import pytest

from mbnas.metrics import METRICS
from mbnas.reporting.figures import (
    case_values,
    measured_metrics,
    plot_case_boxplots,
    plot_example_segmentations,
)
from mbnas.reporting.report_data import ReportError


def _disk(shape, centre, radius, value=1):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (((yy - centre[0]) ** 2 + (xx - centre[1]) ** 2) <= radius**2) * value


def test_case_values_average_over_seeds(table_evals):
    # MB-NAS c1: 0.8 (seed 0), 0.6 (seed 1) -> 0.7
    assert case_values(table_evals[0], "dice") == pytest.approx({"c1": 0.7, "c2": 0.85,
                                                                  "c3": 0.7})
    assert case_values(table_evals[0], "hd95") == pytest.approx({"c1": 3.0, "c2": 3.0,
                                                                  "c3": 3.0})
    with pytest.raises(ReportError, match="unknown metric"):
        case_values(table_evals[0], "jaccard")


def test_boxplots_written(table_evals, tmp_path):
    paths = plot_case_boxplots(table_evals, tmp_path)
    measured = {n for e in table_evals for c in e.cases for n in c.values}
    assert sorted(p.name for p in paths) == sorted(
        f"boxplot_{n}.{ext}" for n in METRICS.names() if n in measured for ext in ("png", "svg"))
    img = mpimg.imread(paths[0])
    assert img.shape[0] > 200 and img.std() > 0.05
    assert "<svg" in paths[1].read_text()[:500]


def _has_colour(img: np.ndarray, rgb: tuple[int, int, int], tol: float = 0.12) -> bool:
    """Whether the panels (the legend at the bottom cut off) show the colour ``rgb``."""
    panels = img[: int(img.shape[0] * 0.8), :, :3]
    return bool(np.any(np.all(np.abs(panels - np.array(rgb) / 255) < tol, axis=-1)))


def test_example_segmentations_draws_both_contours(tmp_path):
    shape = (64, 64)
    rng = np.random.default_rng(1)
    image = _disk(shape, (32, 32), 20) * 1.0 + rng.normal(0, 0.1, shape)
    reference = _disk(shape, (32, 32), 12)
    preds = {"MB-NAS": _disk(shape, (33, 32), 12), "U-Net": _disk(shape, (30, 36), 10)}
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        paths = plot_example_segmentations(image, reference, preds, tmp_path / "example",
                                           title="Spleen, case 3", captions={"U-Net": "0.81"})
    assert [p.name for p in paths] == ["example.png", "example.svg"]
    img = mpimg.imread(paths[0])
    assert _has_colour(img, (0, 224, 0))  # reference contour
    assert _has_colour(img, (255, 45, 111))  # prediction contour


def test_example_segmentations_no_prediction_contour_when_empty(tmp_path):
    shape = (48, 48)
    image = np.zeros(shape)
    reference = _disk(shape, (24, 24), 8) + _disk(shape, (24, 24), 4)  # classes 1 and 2
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # an empty mask must not warn
        (png, _) = plot_example_segmentations(image, reference, {"Empty": np.zeros(shape, int)},
                                              tmp_path / "ex", class_names={1: "TZ", 2: "PZ"})
    img = mpimg.imread(png)
    assert _has_colour(img, (0, 224, 0)) and not _has_colour(img, (255, 45, 111), tol=0.05)


def test_example_segmentations_mark_an_all_foreground_prediction(tmp_path):
    shape = (48, 48)
    reference = _disk(shape, (24, 24), 8)
    (png, _) = plot_example_segmentations(np.zeros(shape), reference,
                                          {"Full": np.ones(shape, int)}, tmp_path / "full")
    assert _has_colour(mpimg.imread(png), (255, 45, 111))  # the frame of the prediction


def test_progress_axis_spans_at_least_a_twentieth_of_dice(tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    from mbnas.reporting import progress_figure as progress

    assert progress.dice_range((0.0041, 0.0052)) == pytest.approx((0.0, 0.05))
    assert progress.dice_range((0.50, 0.51)) == pytest.approx((0.48, 0.53))
    assert progress.dice_range((0.99, 1.0)) == pytest.approx((0.95, 1.0))
    assert progress.dice_range((0.2, 0.6)) == (0.2, 0.6)  # wide enough: unchanged
    seen = []
    real = Figure.savefig

    def spy(fig, *args, **kwargs):
        seen.append(fig.axes[0].get_ylim())
        return real(fig, *args, **kwargs)

    log = [{"index": i, "score": 0.0041 + 0.0001 * i} for i in range(10)]
    monkeypatch.setattr(Figure, "savefig", spy)  # to read the axis as it is saved
    progress.plot_search_progress([("run", log)], tmp_path / "progress")
    low, high = seen[0]
    assert high - low >= progress.MIN_DICE_RANGE - 1e-9


def test_example_segmentations_bad_input(tmp_path):
    with pytest.raises(ReportError, match="2D slice"):
        plot_example_segmentations(np.zeros((2, 8, 8)), np.zeros((8, 8)), {"A": np.zeros((8, 8))},
                                   tmp_path / "x")
    with pytest.raises(ReportError, match="prediction of 'A' has shape"):
        plot_example_segmentations(np.zeros((8, 8)), np.zeros((8, 8)), {"A": np.zeros((8, 9))},
                                   tmp_path / "x")
    with pytest.raises(ReportError, match="at least one prediction"):
        plot_example_segmentations(np.zeros((8, 8)), np.zeros((8, 8)), {}, tmp_path / "x")


def test_every_registered_metric_gets_its_box_plot(table_evals, tmp_path):
    # the fixture's cases know the paper's three metrics; give them every registered one
    evals = [dataclasses.replace(e, cases=tuple(
        dataclasses.replace(c, values={n: c.values.get(n, 1.5) for n in METRICS.names()})
        for c in e.cases)) for e in table_evals]
    assert measured_metrics(evals) == METRICS.names()
    names = {p.name for p in plot_case_boxplots(evals, tmp_path)}
    for n in METRICS.names():
        assert {f"boxplot_{n}.png", f"boxplot_{n}.svg"} <= names
        assert METRICS.get(n).axis_label in (tmp_path / f"boxplot_{n}.svg").read_text()
