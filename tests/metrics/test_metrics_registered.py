"""One body of checks for every registered metric (a new metric adds no test code): the
kit's checks (:mod:`mbnas.testing.metrics`), parametrised over the metrics."""

from __future__ import annotations

import pytest

from mbnas.metrics import METRICS
from mbnas.metrics.registry import MetricDefinition
from mbnas.testing.metrics import (
    SHAPES,
    check_bad_input_refused,
    check_definition,
    check_empty_masks,
    check_finite_and_symmetric,
    check_results_carry_every_metric,
    check_spacing_scaling,
)

NAMES = METRICS.names()


@pytest.fixture(params=NAMES)
def metric(request: pytest.FixtureRequest) -> MetricDefinition:
    return METRICS.get(request.param)


def test_a_definition_is_complete(metric: MetricDefinition) -> None:
    check_definition(metric)


@pytest.mark.parametrize("shape", SHAPES)
def test_empty_masks_follow_the_registered_policy(metric: MetricDefinition,
                                                  shape: tuple[int, ...]) -> None:
    check_empty_masks(metric, shape)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("seed", [1, 2])
def test_values_are_finite_and_symmetric(metric: MetricDefinition, shape: tuple[int, ...],
                                         seed: int) -> None:
    check_finite_and_symmetric(metric, shape, seed)


@pytest.mark.parametrize("shape", SHAPES)
def test_scaling_the_spacing_scales_a_distance_and_leaves_a_ratio(
        metric: MetricDefinition, shape: tuple[int, ...]) -> None:
    check_spacing_scaling(metric, shape)


def test_bad_input_is_refused_for_every_metric(metric: MetricDefinition) -> None:
    check_bad_input_refused(metric)


def test_case_and_slice_results_carry_every_registered_metric() -> None:
    check_results_carry_every_metric()
