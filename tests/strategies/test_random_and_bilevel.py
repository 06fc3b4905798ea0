"""Random search (duplicates, exhaustion, batches) and bilevel search (phases, shared budget)."""

from __future__ import annotations

import pytest

from mbnas.strategies import BilevelSearch, RandomSearch, full_pass_size
from mbnas.testing.toy_space import (
    ToyGenotype,
    ToySpace,
    changed_variables,
    drive,
    flatten,
    kernel_space,
    make_genotype,
    separable_objective,
    topology_space,
)

decode = ToyGenotype.from_dict


def test_random_search_samples_without_duplicates_in_batches_within_budget() -> None:
    space = ToySpace("toy", 3)
    strategy = RandomSearch(space, budget=7, rng=1, decode=decode, batch_size=3)
    batches = drive(strategy, separable_objective(3))
    assert [len(b) for b in batches] == [3, 3, 1]
    asked = flatten(batches)
    assert len({g.key for g in asked}) == 7 and all(space.contains(g) for g in asked)
    assert strategy.stop_reason == "budget"
    # accepted marks each new best, in order.
    running, expected = None, []
    for e in strategy.history:
        expected.append(running is None or e.score > running)
        running = e.score if expected[-1] else running
    assert [e.accepted for e in strategy.history] == expected


def test_random_search_stops_when_the_space_is_exhausted() -> None:
    space = ToySpace("tiny", 1, searched="ad")  # 1 + 2 + 4 = 7 valid genotypes
    assert space.size() == 7
    strategy = RandomSearch(space, budget=50, rng=0, decode=decode, batch_size=3)
    asked = flatten(drive(strategy, separable_objective(1)))
    assert len(asked) == len({g.key for g in asked}) == strategy.n_evaluated == 7
    assert strategy.stop_reason == "exhausted" and strategy.finished


def test_random_search_gives_up_after_max_retries_duplicates() -> None:
    class LyingSize(ToySpace):
        def size(self) -> int:  # claims more genotypes than it can sample
            return 10**6

    space = LyingSize("tiny", 1, searched="ad")
    strategy = RandomSearch(space, budget=50, rng=0, decode=decode, max_retries=200)
    drive(strategy, separable_objective(1))
    assert strategy.n_evaluated == 7 and strategy.stop_reason == "exhausted"


def test_random_search_evaluates_a_given_start_first() -> None:
    space = ToySpace("toy", 3)
    start = make_genotype(3, a1=2, d1=1)
    strategy = RandomSearch(space, budget=5, rng=0, decode=decode, batch_size=2, start=start)
    batches = drive(strategy, separable_objective(3))
    assert batches[0] == [start] and [len(b) for b in batches] == [1, 2, 2]


def _bilevel(budget: int, seed: int = 0, **kwargs) -> BilevelSearch:
    return BilevelSearch(topology_space(3), kernel_space, budget=budget, rng=seed,
                         decode=decode, **kwargs)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_bilevel_searches_topology_then_kernels_sharing_memo_and_budget(seed: int) -> None:
    objective = separable_objective(3, seed=seed)
    strategy = _bilevel(150, seed)
    drive(strategy, objective)
    history = strategy.history
    phases = [e.phase for e in history]
    n_topology = phases.count("topology")
    assert phases == ["topology"] * n_topology + ["kernel"] * (len(phases) - n_topology)
    assert 0 < n_topology < len(phases)
    start = history[0].genotype
    for e in history[:n_topology]:  # blocks and kernels never change in phase 1
        assert {name[0] for name in changed_variables(start, e.genotype)} <= {"a", "d"}
    topology = strategy.topology
    best_topology = max((e for e in history[:n_topology]), key=lambda e: e.score)
    assert topology == best_topology.genotype
    for e in history[n_topology:]:  # only kernels change in phase 2
        assert {name[0] for name in changed_variables(topology, e.genotype)} == {"c"}
    # Phase 2 starts from the best topology without evaluating it again.
    assert [e.key for e in history].count(topology.key) == 1
    assert len({e.key for e in history}) == len(history) == strategy.n_evaluated
    assert strategy.stop_reason == "local optimum"
    assert strategy.best[1] == max(e.score for e in history)


def test_bilevel_reserves_one_full_kernel_pass_from_the_shared_budget() -> None:
    reserve = full_pass_size(kernel_space(make_genotype(3)))
    assert reserve == 9
    strategy = _bilevel(12)
    drive(strategy, separable_objective(3))
    phases = [e.phase for e in strategy.history]
    assert strategy.reserve == reserve
    assert phases.count("topology") == 12 - reserve and phases.count("kernel") == reserve
    assert strategy.n_evaluated == 12 and strategy.stop_reason == "budget"


def test_bilevel_with_less_budget_than_a_kernel_pass_evaluates_only_the_start_topology() -> None:
    start = make_genotype(3, a2=2, d2=1)
    strategy = _bilevel(5, start=start)
    drive(strategy, separable_objective(3))
    assert [e.phase for e in strategy.history] == ["topology"] + ["kernel"] * 4
    assert strategy.history[0].genotype == start and strategy.topology == start
