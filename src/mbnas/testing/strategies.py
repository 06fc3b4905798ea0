"""``check_strategy``: the properties every registered search strategy has.

Each check builds the strategy by its registered name on the toy space
(:mod:`mbnas.testing.toy_space`; its topology part for a strategy with a kernel phase),
drives it with a known objective and asserts one property. A plugin strategy is checked
with ``check_strategy("its-name")``; the suite runs every check on every registered
strategy (``tests/strategies/test_search_shared.py``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable

import pytest

from mbnas.strategies import RandomSearch, Strategy, make_strategy, strategy_definition
from mbnas.testing.toy_space import (
    ToyGenotype,
    ToySpace,
    drive,
    extended_budgets,
    flatten,
    kernel_space,
    separable_objective,
    topology_space,
)

__all__ = ["STRATEGY_CHECKS", "build", "check_strategy"]

N_NODES = 3
decode = ToyGenotype.from_dict
objective = separable_objective(N_NODES, seed=3)


def build(name: str, seed: int, budget: int) -> Strategy:
    """The registered strategy ``name`` on the toy space (its topology part for a
    strategy with a kernel phase)."""
    two_phases = strategy_definition(name).kernel_phase
    space = topology_space(N_NODES) if two_phases else ToySpace("toy", N_NODES)
    return make_strategy(name, space, budget=budget, rng=seed, decode=decode, batch_size=3,
                         kernel_space_for=kernel_space)


def _history(strategy: Strategy) -> list[dict]:
    return [e.to_dict() for e in strategy.history]


def _long(name: str, short: int) -> int:
    """``short`` for random search (no local optimum to reach), else a budget within which
    a strategy that stops at a local optimum on the toy space reaches it."""
    return short if isinstance(build(name, seed=0, budget=1), RandomSearch) else 150


def check_budget_spent_exactly(name: str) -> None:
    """The budget is spent exactly and nothing is asked twice."""
    strategy = build(name, seed=0, budget=10)
    asked = flatten(drive(strategy, objective))
    assert strategy.n_evaluated == len(strategy.history) == len(asked) == 10
    assert len({g.key for g in asked}) == len(asked)
    assert strategy.finished and strategy.stop_reason == "budget"
    assert strategy.ask() is None
    assert [e.index for e in strategy.history] == list(range(10))


def check_seeded(name: str) -> None:
    """The same seed gives the same trajectory, another seed another one."""
    runs: dict[int, list[list[dict]]] = {}
    for seed in (0, 0, 1):
        strategy = build(name, seed=seed, budget=25)
        drive(strategy, objective)
        runs.setdefault(seed, []).append(_history(strategy))
    assert runs[0][0] == runs[0][1]
    assert [e["key"] for e in runs[0][0]] != [e["key"] for e in runs[1][0]]


def check_asks_members_of_the_space(name: str) -> None:
    """Every genotype asked is a valid member of the space."""
    strategy = build(name, seed=2, budget=40)
    space = ToySpace("all", N_NODES)
    for genotype in flatten(drive(strategy, objective)):
        assert space.contains(genotype)


def check_failures_never_accepted(name: str) -> None:
    """Failed evaluations (None, NaN) are never accepted nor the best."""
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
    best = strategy.best
    assert best is not None
    genotype, score = best
    assert math.isfinite(score) and genotype["d1"] != 1 and genotype["c1"] != 7
    assert score == max(e.score for e in strategy.history if e.score is not None)


def check_resume(name: str, pending: bool = False) -> None:
    """A checkpoint resumed after any batch (``pending``: between ask and tell) ends as
    the uninterrupted run; a different seed proves the generator state is restored."""
    budget = _long(name, 30)
    reference = build(name, seed=11, budget=budget)
    n_batches = len(drive(reference, objective))
    assert n_batches > 3
    for k in range(n_batches + 1):
        first = build(name, seed=11, budget=budget)
        drive(first, objective, max_batches=k)
        if pending:
            first.ask()
        state = json.loads(json.dumps(first.state_dict(), allow_nan=False))
        resumed = build(name, seed=12345, budget=budget)
        resumed.load_state_dict(state)
        drive(resumed, objective)
        assert _history(resumed) == _history(reference), f"resumed after {k}"
        assert resumed.best == reference.best
        assert resumed.stop_reason == reference.stop_reason


def check_resume_pending(name: str) -> None:
    """:func:`check_resume` with a batch asked but not told when the checkpoint is taken."""
    check_resume(name, pending=True)


def check_larger_budget_goes_on(name: str) -> None:
    """A finished search resumed with a larger budget goes on as the larger one."""
    larger = _long(name, 60)
    budgets = extended_budgets(lambda seed, budget: build(name, seed, budget), larger,
                               objective)
    reference = build(name, seed=21, budget=larger)
    drive(reference, objective)
    if strategy_definition(name).kernel_phase:
        # Phase 1 may use the budget less one kernel pass (the reserve), so a smaller
        # budget ends it sooner; from every budget that lets it end as in the larger
        # search (its phase-1 evaluations plus the reserve), the search goes on alike.
        reserve = int(reference.reserve)  # type: ignore[attr-defined]
        phase1 = sum(e.phase == reference.history[0].phase for e in reference.history)
        assert set(range(phase1 + reserve, reference.n_evaluated)) <= set(budgets)
        assert phase1 + reserve < reference.n_evaluated
    else:
        assert budgets == list(range(1, reference.n_evaluated))


def check_ask_and_tell(name: str) -> None:
    """Asking twice gives the same batch; tell checks its input."""
    strategy = build(name, seed=5, budget=20)
    with pytest.raises(RuntimeError, match="ask"):
        strategy.tell([0.5])
    batch = strategy.ask()
    assert batch is not None and strategy.ask() == batch
    with pytest.raises(ValueError, match="scores"):
        strategy.tell([0.5] * (len(batch) + 1))
    with pytest.raises(TypeError):
        strategy.tell(["good"] * len(batch))  # type: ignore[list-item]
    strategy.tell([0.5] * len(batch))
    assert strategy.n_evaluated == len(batch)


def check_zero_budget(name: str) -> None:
    """A zero budget asks nothing."""
    strategy = build(name, seed=0, budget=0)
    assert strategy.ask() is None
    assert strategy.finished and strategy.best is None and strategy.n_evaluated == 0


def check_cost_objectives_refused_unless_declared(name: str) -> None:
    """A strategy that does not declare cost support refuses cost objectives."""
    if strategy_definition(name).costs:
        return
    from mbnas.errors import ConfigError

    with pytest.raises(ConfigError, match="not supported"):
        make_strategy(name, ToySpace("toy", N_NODES), decode=decode, costs=("macs",),
                      figures=lambda g: {"macs": 1.0}, kernel_space_for=kernel_space)


#: Every check, in order; each takes the strategy's registered name.
STRATEGY_CHECKS: tuple[Callable[[str], None], ...] = (
    check_budget_spent_exactly, check_seeded, check_asks_members_of_the_space,
    check_failures_never_accepted, check_resume, check_resume_pending,
    check_larger_budget_goes_on, check_ask_and_tell, check_zero_budget,
    check_cost_objectives_refused_unless_declared)


def check_strategy(name: str) -> None:
    """Run every check of :data:`STRATEGY_CHECKS` on the registered strategy ``name``."""
    for check in STRATEGY_CHECKS:
        check(name)
