"""Local search: first improvement, strict improvement, local optimum, budget, skipping."""

from __future__ import annotations

import json

import pytest

from mbnas.errors import GenotypeError
from mbnas.strategies import LocalSearch
from mbnas.testing.toy_space import (
    ToyGenotype,
    ToySpace,
    changed_variables,
    drive,
    flatten,
    make_genotype,
    optimum_of,
    separable_objective,
)

decode = ToyGenotype.from_dict


def local(space: ToySpace, **kwargs) -> LocalSearch:
    kwargs.setdefault("rng", 0)
    kwargs.setdefault("budget", 150)
    return LocalSearch(space, decode=decode, **kwargs)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_moves_right_after_a_strictly_better_option(seed: int) -> None:
    space = ToySpace("toy", 3)
    objective = separable_objective(3, seed=seed)
    strategy = local(space, rng=seed)
    batches = drive(strategy, objective)
    # Replay: every batch is the other options of ONE variable of the current genotype,
    # and the current moves to the batch's first best option iff it is strictly better.
    current = batches[0][0]
    moves = 0
    for batch, entries in zip(batches[1:], _entries_per_batch(strategy)[1:], strict=True):
        changed = {tuple(changed_variables(current, g)) for g in batch}
        assert len(changed) == 1 and len(next(iter(changed))) == 1, "one variable per batch"
        scores = [objective(g) for g in batch]
        best = batch[scores.index(max(scores))]
        moved = max(scores) > objective(current)
        assert [e.accepted for e in entries] == [moved and g == best for g in batch]
        if moved:
            current, moves = best, moves + 1
    assert moves >= 2
    assert strategy.current == current


def _entries_per_batch(strategy: LocalSearch) -> list[list]:
    out: dict[int, list] = {}
    for e in strategy.history:
        out.setdefault(e.batch, []).append(e)
    return [out[b] for b in sorted(out)]


def test_equal_scores_never_move_and_a_flat_pass_ends_the_search() -> None:
    space = ToySpace("toy", 3)
    start = make_genotype(3, a2=2, d2=1, b3="dense")
    strategy = local(space, start=start)
    batches = drive(strategy, lambda g: 0.5)
    assert batches[0] == [start]
    for g in flatten(batches[1:]):
        assert len(changed_variables(start, g)) == 1
    # One full pass: the start plus each valid neighbour once, then stop.
    assert strategy.n_evaluated == 1 + len(space.neighbours(start))
    assert strategy.current == start and strategy.passes == 1
    assert strategy.stop_reason == "local optimum"
    assert [e.accepted for e in strategy.history] == [True] + [False] * (strategy.n_evaluated - 1)


def test_ties_between_options_go_to_the_first_in_option_order() -> None:
    space = ToySpace("kernels", 1, searched="c")
    start = make_genotype(1, c1=1)
    score = {1: 0.0, 3: 0.2, 5: 0.9, 7: 0.9}
    strategy = local(space, start=start)
    batches = drive(strategy, lambda g: score[g["c1"]])
    assert [[g["c1"] for g in b] for b in batches] == [[1], [3, 5, 7]]
    assert strategy.current["c1"] == 5
    # Pass 2 re-visits c1 = 1, 3, 7 from the memo: asked never again, not counted.
    assert strategy.passes == 2 and strategy.n_evaluated == 4
    assert strategy.stop_reason == "local optimum"


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_finds_the_unique_optimum_and_stops_after_one_pass_without_moves(seed: int) -> None:
    space = ToySpace("toy", 3)
    objective = separable_objective(3, seed=seed)
    strategy = local(space, rng=seed)
    asked = flatten(drive(strategy, objective))
    optimum = optimum_of(objective, space)
    assert strategy.current == optimum and strategy.best == (optimum, objective(optimum))
    assert strategy.stop_reason == "local optimum" and strategy.n_evaluated < 150
    last_move = max(e.pass_index for e in strategy.history if e.accepted)
    assert strategy.passes == last_move + 1
    # The optimum was confirmed: every one of its neighbours was evaluated.
    keys = {g.key for g in asked}
    assert {g.key for g in space.neighbours(optimum)} <= keys
    assert len(keys) == len(asked)


def test_a_short_budget_evaluates_the_first_options_in_order() -> None:
    space = ToySpace("toy", 3)
    start = make_genotype(3)
    strategy = local(space, start=start, budget=3)
    batches = drive(strategy, separable_objective(3))
    assert [len(b) for b in batches] == [1, 2]
    probed = strategy.history[1].variable
    variable = next(v for v in space.variables() if v.name == probed)
    options = [space.with_value(start, variable, o) for o in variable.options
               if o != start[probed]]
    assert batches[1] == [g for g in options if g is not None][:2]
    assert strategy.n_evaluated == 3 and strategy.stop_reason == "budget"


def test_invalid_options_are_skipped_never_asked() -> None:
    space = ToySpace("one-node", 1, searched="ad")
    start = make_genotype(1, a1=4, d1=2)  # a1 = 1 or 2 would break d1 < a1
    strategy = local(space, start=start)
    asked = flatten(drive(strategy, lambda g: g["a1"] + g["d1"] / 10))
    assert space.rejected > 0
    assert all(space.contains(g) for g in asked)
    assert not [g for g in asked if g["d1"] == 2 and g["a1"] != 4]
    assert strategy.current == make_genotype(1, a1=4, d1=3)


def test_a_failed_start_is_left_for_the_first_successful_option() -> None:
    space = ToySpace("kernels", 1, searched="c")
    strategy = local(space, start=make_genotype(1, c1=1))
    drive(strategy, lambda g: None if g["c1"] == 1 else float(g["c1"] == 3))
    assert strategy.history[0].score is None and not strategy.history[0].accepted
    assert strategy.current["c1"] == 3 and strategy.best[1] == 1.0


def test_a_finished_search_goes_on_when_resumed_with_a_larger_budget() -> None:
    space = ToySpace("toy", 3)
    objective = separable_objective(3, seed=5)
    short = local(space, rng=5, budget=20)
    drive(short, objective)
    assert short.stop_reason == "budget" and short.finished
    longer = local(space, rng=99, budget=150)
    longer.load_state_dict(json.loads(json.dumps(short.state_dict())))
    assert not longer.finished
    asked = flatten(drive(longer, objective))
    history = [e.to_dict() for e in longer.history]
    assert history[:20] == [e.to_dict() for e in short.history]
    assert len(asked) == longer.n_evaluated - 20 > 0
    assert not {g.key for g in asked} & {e.key for e in short.history}
    assert longer.stop_reason == "local optimum"
    assert longer.current == optimum_of(objective, space)


def test_a_start_outside_the_space_is_refused() -> None:
    space = ToySpace("kernels", 1, searched="c")
    with pytest.raises(GenotypeError, match="not in search space 'kernels'"):
        local(space, start=make_genotype(1, b1="dense"))
