"""Local and bilevel search with restarts (the authors' ``hillClimberMultiple``)."""

from __future__ import annotations

import json

import pytest

from mbnas.errors import ConfigError
from mbnas.strategies import LocalSearch, Strategy, make_strategy, strategy_definition
from mbnas.testing.toy_space import (
    ToyGenotype,
    ToySpace,
    drive,
    kernel_space,
    separable_objective,
    topology_space,
)

N_NODES = 3
decode = ToyGenotype.from_dict
objective = separable_objective(N_NODES, seed=3)
WALKS = ("local", "bilevel")  # the strategies whose phases are local searches


def build(name: str, seed: int, budget: int, restarts: bool = True) -> Strategy:
    two_phases = strategy_definition(name).kernel_phase
    space = topology_space(N_NODES) if two_phases else ToySpace("toy", N_NODES)
    return make_strategy(name, space, budget=budget, rng=seed, decode=decode,
                         kernel_space_for=kernel_space, restarts=restarts)


def history(strategy: Strategy) -> list[dict]:
    return [e.to_dict() for e in strategy.history]


@pytest.mark.parametrize("name", WALKS)
def test_restarts_spend_the_budget_a_single_walk_leaves(name: str) -> None:
    single = build(name, seed=0, budget=150, restarts=False)
    drive(single, objective)
    assert single.stop_reason == "local optimum" and single.n_evaluated < 150
    again = build(name, seed=0, budget=150)
    drive(again, objective)
    assert again.n_evaluated == 150 and again.stop_reason == "budget"
    # Until the first local optimum both walks are the same; then the restarts go on
    # (bilevel: phase 1 restarts before phase 2 begins).
    n = next(e.index for e in again.history if e.restart)
    assert n > 1 and history(again)[:n] == history(single)[:n]
    later = again.history[n:]
    assert {e.restart for e in later} >= {1, 2}
    starts = [e for e in later if e.variable is None]
    assert starts and all(e.restart > 0 for e in starts)
    assert "restart" in later[0].to_dict() and "restart" not in single.history[0].to_dict()
    assert len({e.key for e in again.history}) == 150  # memoised networks stay free


@pytest.mark.parametrize("name", WALKS)
def test_resume_mid_restart_equals_an_uninterrupted_run(name: str) -> None:
    budget = 80
    reference = build(name, seed=11, budget=budget)
    n_batches = len(drive(reference, objective))
    assert max(e.restart for e in reference.history) >= 1
    for k in range(n_batches + 1):
        first = build(name, seed=11, budget=budget)
        drive(first, objective, max_batches=k)
        if k % 2:
            first.ask()  # also between ask and tell
        state = json.loads(json.dumps(first.state_dict(), allow_nan=False))
        resumed = build(name, seed=999, budget=budget)
        resumed.load_state_dict(state)
        drive(resumed, objective)
        assert history(resumed) == history(reference), f"resumed after {k} batches"
        assert resumed.stop_reason == reference.stop_reason


def test_a_budget_stop_at_a_local_optimum_restarts_when_resumed_with_more() -> None:
    short = build("local", seed=2, budget=150, restarts=False)
    drive(short, objective)
    n = short.n_evaluated
    first = build("local", seed=2, budget=n)
    drive(first, objective)
    assert first.stop_reason == "budget" and first.restarts == 0
    larger = build("local", seed=2, budget=n + 10)
    larger.load_state_dict(first.state_dict())
    drive(larger, objective)
    assert larger.n_evaluated == n + 10 and larger.restarts >= 1


def test_a_space_evaluated_completely_ends_the_restarts() -> None:
    space = ToySpace("tiny", 1)
    search = LocalSearch(space, budget=10 * space.size(), rng=0, decode=decode,
                         restarts=True)
    drive(search, separable_objective(1, seed=1))
    assert search.n_evaluated == space.size() and search.stop_reason == "exhausted"


def test_restarts_are_refused_where_nothing_restarts() -> None:
    with pytest.raises(ConfigError, match="random search"):
        build("random", seed=0, budget=5)
    with pytest.raises(ConfigError, match="restarts must be true or false"):
        LocalSearch(ToySpace("toy", 2), budget=5, rng=0, decode=decode, restarts=1)
    with pytest.raises(ConfigError, match="Pareto"):
        make_strategy("local", ToySpace("toy", 2), budget=5, rng=0, decode=decode,
                      costs=("params",), figures=lambda g: {"params": 1.0}, restarts=True)
