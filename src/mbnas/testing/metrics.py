"""``check_metric``: what every registered metric must do.

The empty-mask policy, finite values, symmetry where it applies, how it scales with the
spacing, bad input refused, and that case, slice and per-class results carry it, on 2D
and 3D masks. The suite runs each check on every registered metric
(``tests/metrics/test_metrics_registered.py``); a plugin metric is checked with
``check_metric("its-name")``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from mbnas.metrics import METRICS, case_metrics, image_diagonal_mm
from mbnas.metrics.registry import REDUCTIONS, MetricDefinition
from mbnas.metrics.slices import paper_slice_metrics

__all__ = ["SHAPES", "check_metric"]

TOLERANCE = 2.0


def _masks(shape: tuple[int, ...], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two overlapping, non-identical blobs (boxes with a few voxels flipped)."""
    rng = np.random.default_rng(seed)
    ref = np.zeros(shape, bool)
    pred = np.zeros(shape, bool)
    ref[tuple(slice(1, n - 2) for n in shape)] = True
    pred[tuple(slice(2, n - 1) for n in shape)] = True
    pred ^= rng.random(shape) < 0.05
    return pred, ref


SHAPES = [(12, 14), (4, 10, 12)]


def _spacing(shape: tuple[int, ...]) -> tuple[float, ...]:
    return (2.5, 0.8, 0.6)[-len(shape):]


def check_definition(metric: MetricDefinition) -> None:
    assert metric.label and metric.header and metric.decimals >= 0
    assert metric.unit in ("", "mm")
    for how in ("classes", "slice_classes", "slices"):
        assert getattr(metric, how) in REDUCTIONS
    assert metric.column_header(tolerance_mm=TOLERANCE)  # every setting it names is known


def check_empty_masks(metric: MetricDefinition,
                                                  shape: tuple[int, ...]) -> None:
    spacing = _spacing(shape)
    empty = np.zeros(shape, bool)
    full, _ = _masks(shape, 0)
    assert metric.compute(empty, empty, spacing, tolerance_mm=TOLERANCE) == metric.both_empty
    one = metric.empty_value(shape, spacing, both=False)
    assert math.isfinite(one)
    assert metric.compute(full, empty, spacing, tolerance_mm=TOLERANCE) == pytest.approx(one)
    assert metric.compute(empty, full, spacing, tolerance_mm=TOLERANCE) == pytest.approx(one)
    # one empty mask is the worst any prediction of that image can score
    perfect = metric.compute(full, full, spacing, tolerance_mm=TOLERANCE)
    assert perfect == pytest.approx(metric.both_empty)  # both empty counts as perfect
    assert (one < perfect) if metric.higher_is_better else (one > perfect)
    if metric.unit == "mm":  # a missed structure is as far off as the image allows
        assert one == pytest.approx(image_diagonal_mm(shape, spacing))


def check_finite_and_symmetric(metric: MetricDefinition, shape: tuple[int, ...],
                                         seed: int) -> None:
    pred, ref = _masks(shape, seed)
    spacing = _spacing(shape)
    value = metric.compute(pred, ref, spacing, tolerance_mm=TOLERANCE)
    assert math.isfinite(value)
    perfect = metric.both_empty
    assert (value <= perfect) if metric.higher_is_better else (value >= perfect)
    if metric.symmetric:
        assert metric.compute(ref, pred, spacing, tolerance_mm=TOLERANCE) == pytest.approx(value)


def check_spacing_scaling(
        metric: MetricDefinition, shape: tuple[int, ...]) -> None:
    pred, ref = _masks(shape, 3)
    spacing = _spacing(shape)
    k = 3.0  # every length in mm, the tolerance included, k times longer
    before = metric.compute(pred, ref, spacing, tolerance_mm=TOLERANCE)
    after = metric.compute(pred, ref, tuple(k * s for s in spacing), tolerance_mm=k * TOLERANCE)
    factor = k if metric.unit == "mm" else 1.0
    assert after == pytest.approx(factor * before, rel=1e-6, abs=1e-9)


def check_bad_input_refused(metric: MetricDefinition) -> None:
    from mbnas.errors import MetricError

    pred, ref = _masks((8, 8), 0)
    with pytest.raises(MetricError, match="spacing"):
        metric.compute(pred, ref, (1.0,), tolerance_mm=TOLERANCE)
    with pytest.raises(MetricError, match="differ in shape"):
        metric.compute(pred, ref[:4], (1.0, 1.0), tolerance_mm=TOLERANCE)


def check_results_carry_every_metric() -> None:
    pred = np.zeros((3, 12, 12), np.int64)
    ref = np.zeros_like(pred)
    ref[0:2, 2:8, 2:8] = 1
    pred[0:3, 3:9, 3:9] = 1
    ref[1, 9:11, 9:11] = 2  # class 2 missed
    names = METRICS.names()  # now: a test may have registered one more
    m = case_metrics(pred, ref, 3, (2.0, 0.7, 0.7), TOLERANCE)
    assert tuple(m.values) == names
    assert set(m.to_dict()) >= {*names, *(f"mean_{n}" for n in names)}
    paper = paper_slice_metrics(pred, ref, 3, (0.7, 0.7), TOLERANCE)
    assert set(names) <= set(paper) and set(paper["per_class"]["2"]) == set(names)
    for name in names:
        d = METRICS.get(name)
        # class 2 is present in exactly one mask of slice 1: the one-empty value there
        slice_one = d.compute(pred[1] == 2, ref[1] == 2, (0.7, 0.7), tolerance_mm=TOLERANCE)
        assert slice_one == pytest.approx(d.empty_value((12, 12), (0.7, 0.7), both=False))
        assert m.mean(name) == pytest.approx(d.reduce(m.values[name], "classes"))


def check_metric(name: str) -> None:
    """Every check on the registered metric ``name``."""
    metric = METRICS.get(name)
    check_definition(metric)
    for shape in SHAPES:
        check_empty_masks(metric, shape)
        for seed in (1, 2):
            check_finite_and_symmetric(metric, shape, seed)
        check_spacing_scaling(metric, shape)
    check_bad_input_refused(metric)
    check_results_carry_every_metric()
