"""Pareto local search and hard cost limits on the toy space (no torch)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mbnas.errors import ConfigError
from mbnas.strategies import (
    LimitedSpace,
    LocalSearch,
    ParetoLocalSearch,
    RandomSearch,
    pareto_front,
    parse_amount,
)
from mbnas.strategies.pareto import dominates, objective_vector
from mbnas.testing.toy_space import (
    ToyGenotype,
    ToySpace,
    drive,
    extended_budgets,
    flatten,
    separable_objective,
)

N_NODES = 3
decode = ToyGenotype.from_dict
objective = separable_objective(N_NODES, seed=3)
COSTS = ("macs", "params")


def figures(genotype: ToyGenotype) -> dict[str, float]:
    """A toy cost that conflicts with the objective: wide nodes and big kernels cost."""
    v = dict(genotype.values)
    macs = sum(v[f"a{n}"] * v[f"c{n}"] ** 2 for n in range(1, N_NODES + 1))
    params = sum(v[f"a{n}"] * (2 if v[f"b{n}"] == "dense" else 1) for n in range(1, N_NODES + 1))
    return {"macs": float(macs), "params": float(params)}


def pareto(budget: int, seed: int = 0, space=None) -> ParetoLocalSearch:
    return ParetoLocalSearch(space or ToySpace("toy", N_NODES), budget=budget, rng=seed,
                             decode=decode, figures=figures, costs=COSTS)


def vector(e) -> tuple[float, ...]:
    return objective_vector(e.score, figures(e.genotype), COSTS)


def test_front_keeps_the_non_dominated_and_the_first_of_equals() -> None:
    assert dominates((1, 2), (1, 1)) and not dominates((1, 1), (1, 1))
    points = [("a", (1.0, -5.0)), ("b", (2.0, -9.0)), ("c", (1.0, -5.0)),
              ("d", (0.5, -1.0)), ("e", (2.0, -6.0))]
    assert pareto_front(points) == ["a", "d", "e"]


def test_archive_is_the_front_of_everything_evaluated() -> None:
    strategy = pareto(budget=40)
    drive(strategy, objective)
    history = strategy.history
    archive = [g.key for g, _, _ in strategy.archive]
    assert archive == pareto_front([(e.key, vector(e)) for e in history])
    members = {e.key: vector(e) for e in history if e.key in archive}
    assert len(members) >= 2  # the costs conflict with the score: a real front
    for e in history:  # every other network is (weakly) dominated by a member
        if e.key not in members:
            assert any(m == vector(e) or dominates(m, vector(e)) for m in members.values())
    assert [e.accepted for e in history][0]  # the start enters the archive


def test_a_pareto_local_optimum_explores_every_member_fully() -> None:
    space = ToySpace("toy", 2)
    strategy = ParetoLocalSearch(space, budget=10_000, rng=1, decode=decode,
                                 figures=lambda g: {"macs": float(sum(
                                     v for n, v in g.values if n[0] in "ac"))},
                                 costs=("macs",))
    drive(strategy, separable_objective(2, seed=1))
    assert strategy.stop_reason == "Pareto local optimum"
    evaluated = {e.key for e in strategy.history}
    for genotype, _, _ in strategy.archive:
        assert all(n.key in evaluated for n in space.neighbours(genotype))
    assert strategy.n_evaluated < space.size()  # it did not just enumerate the space


def test_same_seed_same_trajectory_and_resume_from_json_at_every_batch() -> None:
    reference = pareto(budget=30, seed=5)
    drive(reference, objective)
    expected = [e.to_dict() for e in reference.history]
    other = pareto(budget=30, seed=6)
    drive(other, objective)
    assert [e.to_dict() for e in other.history] != expected
    strategy = pareto(budget=30, seed=5)
    while (batch := strategy.ask()) is not None:
        strategy.tell([objective(g) for g in batch])
        state = json.loads(json.dumps(strategy.state_dict()))
        strategy = pareto(budget=30, seed=99)  # the seed is restored from the state
        strategy.load_state_dict(state)
    assert [e.to_dict() for e in strategy.history] == expected
    assert strategy.state_dict()["strategy_state"]["archive"] == \
        reference.state_dict()["strategy_state"]["archive"]


def test_failed_evaluations_never_enter_the_archive() -> None:
    strategy = pareto(budget=20)
    drive(strategy, lambda g: None if g["b1"] == "dense" else objective(g))
    assert all(g["b1"] != "dense" for g, _, _ in strategy.archive)
    assert not any(e.accepted for e in strategy.history if e.score is None)


def limited(limit: float, space=None) -> LimitedSpace:
    return LimitedSpace(space or ToySpace("toy", N_NODES), figures, {"macs": limit})


def test_local_search_never_asks_an_architecture_over_a_limit() -> None:
    space = limited(60.0)
    start = ToySpace("toy", N_NODES).fixed.replace(a1=2, a2=2, a3=2)  # macs 54
    strategy = LocalSearch(space, budget=25, rng=0, decode=decode, start=start)
    asked = flatten(drive(strategy, objective))
    assert asked and all(figures(g)["macs"] <= 60 for g in asked)
    assert space.skipped, "the limit never turned a neighbour away"
    for s in space.skipped:
        assert s["figures"]["macs"] > 60 and "macs" in s["skipped"] and "> max" in s["skipped"]
        assert s["key"] not in {g.key for g in asked}
    state = json.loads(json.dumps(space.state_dict()))
    again = limited(60.0)
    again.load_state_dict(state)
    assert again.skipped == space.skipped
    with pytest.raises(ConfigError, match="limits"):
        limited(50.0).load_state_dict(state)


def test_random_search_samples_only_within_the_limits() -> None:
    space = limited(40.0)
    strategy = RandomSearch(space, budget=15, rng=2, decode=decode, batch_size=3)
    asked = flatten(drive(strategy, objective))
    assert len(asked) == 15 and all(figures(g)["macs"] <= 40 for g in asked)
    assert space.skipped
    with pytest.raises(ConfigError, match="no architecture"):
        LimitedSpace(ToySpace("toy", N_NODES), figures, {"macs": 1.0},
                     max_draws=50).sample(np.random.default_rng(0))


def test_pareto_search_within_limits_treats_them_as_invalid_neighbours() -> None:
    space = limited(60.0)
    strategy = pareto(budget=30, space=space)
    asked = flatten(drive(strategy, objective))
    assert all(figures(g)["macs"] <= 60 for g in asked)


@pytest.mark.parametrize(("text", "value"), [
    ("50M", 5e7), ("2G", 2e9), ("2GiB", 2 ** 31), ("1.5k", 1500.0), ("300", 300.0),
    (12, 12.0), ("2e3", 2000.0), ("512MiB", 2 ** 29)])
def test_amounts_take_suffixes(text, value) -> None:
    assert parse_amount(text) == value


@pytest.mark.parametrize("text", ["fifty", "-3M", "0", "5X", "", "1e999"])
def test_bad_amounts_are_refused(text) -> None:
    with pytest.raises(ConfigError, match="max-macs"):
        parse_amount(text, "max-macs")


def test_a_finished_pareto_search_resumed_with_a_larger_budget_goes_on_as_the_larger_one(
        ) -> None:
    larger = 60
    budgets = extended_budgets(lambda seed, budget: pareto(budget, seed), larger, objective)
    assert budgets == list(range(1, larger))
