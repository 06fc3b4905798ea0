"""Properties every strategy has: one test body, parametrised over the strategies."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest
from toy_space import (
    ToyGenotype,
    ToySpace,
    drive,
    extended_budgets,
    flatten,
    kernel_space,
    separable_objective,
    topology_space,
)

from mbnas.errors import ConfigError
from mbnas.strategies import (
    DEFAULT_STRATEGY,
    BilevelSearch,
    LocalSearch,
    RandomSearch,
    Strategy,
    make_strategy,
    strategy_definition,
    strategy_names,
)
from mbnas.strategies.registry import default_strategy

N_NODES = 3
decode = ToyGenotype.from_dict


def build(name: str, seed: int, budget: int) -> Strategy:
    """The registered strategy ``name`` on the toy space (its topology part for a
    strategy with a kernel phase)."""
    two_phases = strategy_definition(name).kernel_phase
    space = topology_space(N_NODES) if two_phases else ToySpace("toy", N_NODES)
    return make_strategy(name, space, budget=budget, rng=seed, decode=decode, batch_size=3,
                         kernel_space_for=kernel_space)


# Every registered ask/tell strategy runs the shared checks. A strategy whose search is
# done by training (``one_shot``: dnas) only asks for the networks that training decoded,
# so it cannot search the toy space; tests/strategies/test_dnas_strategy.py covers it.
STRATEGIES = tuple(n for n in strategy_names() if not strategy_definition(n).one_shot)
objective = separable_objective(N_NODES, seed=3)


def history_dicts(strategy: Strategy) -> list[dict]:
    return [e.to_dict() for e in strategy.history]


@pytest.mark.parametrize("name", STRATEGIES)
def test_budget_is_spent_exactly_and_nothing_is_asked_twice(name: str) -> None:
    strategy = build(name, seed=0, budget=10)
    asked = flatten(drive(strategy, objective))
    assert strategy.n_evaluated == len(strategy.history) == len(asked) == 10
    assert len({g.key for g in asked}) == len(asked)
    assert strategy.finished and strategy.stop_reason == "budget"
    assert strategy.ask() is None
    assert [e.index for e in strategy.history] == list(range(10))


@pytest.mark.parametrize("name", STRATEGIES)
def test_same_seed_same_trajectory_other_seed_other_trajectory(name: str) -> None:
    runs = {}
    for seed in (0, 0, 1):
        strategy = build(name, seed=seed, budget=25)
        drive(strategy, objective)
        runs.setdefault(seed, []).append(history_dicts(strategy))
    assert runs[0][0] == runs[0][1]
    assert [e["key"] for e in runs[0][0]] != [e["key"] for e in runs[1][0]]


@pytest.mark.parametrize("name", STRATEGIES)
def test_asked_genotypes_are_valid_members_of_the_space(name: str) -> None:
    strategy = build(name, seed=2, budget=40)
    for genotype in flatten(drive(strategy, objective)):
        space = ToySpace("all", N_NODES)
        assert space.contains(genotype)


@pytest.mark.parametrize("name", STRATEGIES)
def test_failed_evaluations_are_never_accepted_nor_best(name: str) -> None:
    def flaky(g: ToyGenotype) -> float | None:
        # d1 = 1 and c1 = 7 "crash" (NaN and None are both failures). Real scores are
        # negative, so reading a failure as 0 would wrongly prefer it.
        if g["d1"] == 1:
            return float("nan")
        if g["c1"] == 7:
            return None
        return objective(g) - 100.0

    strategy = build(name, seed=4, budget=40)
    drive(strategy, flaky)
    failed = [e for e in strategy.history if e.score is None]
    assert failed, "the objective should have failed at least once"
    assert not any(e.accepted for e in failed)
    genotype, score = strategy.best
    assert math.isfinite(score) and genotype["d1"] != 1 and genotype["c1"] != 7
    assert score == max(e.score for e in strategy.history if e.score is not None)


@pytest.mark.parametrize("name", STRATEGIES)
@pytest.mark.parametrize("pending", [False, True], ids=["after-tell", "between-ask-and-tell"])
def test_checkpoint_resume_equals_uninterrupted_run(name: str, pending: bool) -> None:
    # Local and bilevel searches run to their local optimum (several passes, both phases).
    budget = 30 if name == "random" else 150
    reference = build(name, seed=11, budget=budget)
    n_batches = len(drive(reference, objective))
    assert n_batches > 3
    for k in range(n_batches + 1):
        first = build(name, seed=11, budget=budget)
        drive(first, objective, max_batches=k)
        if pending:
            first.ask()
        state = json.loads(json.dumps(first.state_dict(), allow_nan=False))
        # A different seed: equal results prove the generator state is restored.
        resumed = build(name, seed=12345, budget=budget)
        resumed.load_state_dict(state)
        drive(resumed, objective)
        assert history_dicts(resumed) == history_dicts(reference), f"resumed after {k}"
        assert resumed.best == reference.best
        assert resumed.stop_reason == reference.stop_reason


@pytest.mark.parametrize("name", STRATEGIES)
def test_a_finished_search_resumed_with_a_larger_budget_goes_on_as_the_larger_one(
        name: str) -> None:
    larger = 60 if name == "random" else 150  # local and bilevel: to the local optimum
    budgets = extended_budgets(lambda seed, budget: build(name, seed, budget), larger,
                               objective)
    reference = build(name, seed=21, budget=larger)
    drive(reference, objective)
    if strategy_definition(name).kernel_phase:
        # Phase 1 may use the budget less one kernel pass (the reserve), so a smaller
        # budget ends it sooner; from every budget that lets it end as in the larger
        # search (its phase-1 evaluations plus the reserve), the search goes on alike.
        phase1 = sum(e.phase == reference.history[0].phase for e in reference.history)
        assert set(range(phase1 + reference.reserve, reference.n_evaluated)) <= set(budgets)
        assert phase1 + reference.reserve < reference.n_evaluated
    else:
        assert budgets == list(range(1, reference.n_evaluated))


@pytest.mark.parametrize("name", STRATEGIES)
def test_ask_twice_gives_the_same_batch_and_tell_checks_its_input(name: str) -> None:
    strategy = build(name, seed=5, budget=20)
    with pytest.raises(RuntimeError, match="ask"):
        strategy.tell([0.5])
    batch = strategy.ask()
    assert strategy.ask() == batch
    with pytest.raises(ValueError, match="scores"):
        strategy.tell([0.5] * (len(batch) + 1))
    with pytest.raises(TypeError):
        strategy.tell(["good"] * len(batch))
    strategy.tell([0.5] * len(batch))
    assert strategy.n_evaluated == len(batch)


@pytest.mark.parametrize("name", STRATEGIES)
def test_a_zero_budget_asks_nothing(name: str) -> None:
    strategy = build(name, seed=0, budget=0)
    assert strategy.ask() is None
    assert strategy.finished and strategy.best is None and strategy.n_evaluated == 0


def test_checkpoint_of_another_strategy_or_space_is_refused() -> None:
    random_state = build("random", seed=0, budget=5).state_dict()
    with pytest.raises(ConfigError, match="strategy 'random'"):
        build("local", seed=0, budget=5).load_state_dict(random_state)
    other_space = LocalSearch(ToySpace("other", N_NODES), budget=5, rng=0, decode=decode)
    with pytest.raises(ConfigError, match="space 'other'"):
        build("local", seed=0, budget=5).load_state_dict(other_space.state_dict())
    with pytest.raises(ConfigError, match="not a search checkpoint"):
        build("local", seed=0, budget=5).load_state_dict({"history": []})
    broken = build("local", seed=0, budget=5).state_dict()
    del broken["rng"]
    with pytest.raises(ConfigError, match="malformed"):
        build("local", seed=0, budget=5).load_state_dict(broken)


def test_make_strategy_builds_by_name_and_rejects_bad_settings() -> None:
    space = ToySpace("toy", N_NODES)
    assert isinstance(make_strategy("local", space, rng=0, decode=decode), LocalSearch)
    random_search = make_strategy("random", space, rng=0, decode=decode, batch_size=4)
    assert isinstance(random_search, RandomSearch) and len(random_search.ask()) == 4
    bilevel = make_strategy("bilevel", topology_space(N_NODES), rng=0, decode=decode,
                            kernel_space_for=kernel_space)
    assert isinstance(bilevel, BilevelSearch) and bilevel.budget == 150
    assert default_strategy() == DEFAULT_STRATEGY == strategy_names()[0]  # the built-ins come first
    unregistered = "-".join(("not", *strategy_names()))  # no registered name, whatever they are
    with pytest.raises(ConfigError) as info:
        make_strategy(unregistered, space, decode=decode)
    assert str(info.value) == (f"unknown search strategy {unregistered!r}; valid: "
                               + ", ".join(strategy_names()))
    with pytest.raises(ConfigError, match="kernel_space_for"):
        make_strategy("bilevel", topology_space(N_NODES), decode=decode)
    with pytest.raises(ConfigError, match="budget"):
        make_strategy("local", space, budget=-1, decode=decode)
    with pytest.raises(ConfigError, match="batch_size"):
        make_strategy("random", space, decode=decode, batch_size=0)


def test_importing_the_search_package_does_not_import_torch() -> None:
    code = "import sys, mbnas.strategies; assert 'torch' not in sys.modules, 'torch imported'"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_checkpoint_keeps_the_bit_generator_type_of_the_search() -> None:
    def mt(seed: int) -> np.random.Generator:
        return np.random.Generator(np.random.MT19937(seed))

    space = ToySpace("toy", N_NODES)
    reference = LocalSearch(space, budget=40, rng=mt(3), decode=decode)
    drive(reference, objective)
    first = LocalSearch(space, budget=40, rng=mt(3), decode=decode)
    drive(first, objective, max_batches=4)
    state = json.loads(json.dumps(first.state_dict(), allow_nan=False))
    resumed = LocalSearch(space, budget=40, rng=7, decode=decode)  # a PCG64 generator
    resumed.load_state_dict(state)
    drive(resumed, objective)
    assert history_dicts(resumed) == history_dicts(reference)


def test_strategy_recipe_of_extending_md_passes_the_shared_strategy_checks(plugin) -> None:
    from mbnas.strategies import STRATEGIES

    plugin.recipe("A search strategy", STRATEGIES)
    (name,) = (n for n in strategy_names() if n not in STRATEGIES_BUILT_IN)
    for check in (test_budget_is_spent_exactly_and_nothing_is_asked_twice,
                  test_same_seed_same_trajectory_other_seed_other_trajectory,
                  test_asked_genotypes_are_valid_members_of_the_space,
                  test_failed_evaluations_are_never_accepted_nor_best,
                  test_a_finished_search_resumed_with_a_larger_budget_goes_on_as_the_larger_one,
                  test_ask_twice_gives_the_same_batch_and_tell_checks_its_input,
                  test_a_zero_budget_asks_nothing):
        check(name)
    for pending in (False, True):
        test_checkpoint_resume_equals_uninterrupted_run(name, pending)


STRATEGIES_BUILT_IN = strategy_names()
