"""Properties every strategy has: the kit's checks (:mod:`mbnas.testing.strategies`),
parametrised over the strategies, and the registry's own behaviour."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

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
from mbnas.testing.strategies import STRATEGY_CHECKS, build, check_strategy
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
# Every registered ask/tell strategy runs the shared checks. A strategy whose search is
# done by training (``one_shot``: dnas) only asks for the networks that training decoded,
# so it cannot search the toy space; tests/strategies/test_dnas_strategy.py covers it.
STRATEGIES = tuple(n for n in strategy_names() if not strategy_definition(n).one_shot)
objective = separable_objective(N_NODES, seed=3)


def history_dicts(strategy: Strategy) -> list[dict]:
    return [e.to_dict() for e in strategy.history]


@pytest.mark.parametrize("check", STRATEGY_CHECKS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("name", STRATEGIES)
def test_every_strategy_passes_the_shared_checks(name: str, check) -> None:
    check(name)  # mbnas.testing.strategies: the kit a plugin strategy runs too


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
    assert default_strategy() == DEFAULT_STRATEGY == STRATEGIES[0]  # named, and built in
    unregistered = "-".join(("not", *STRATEGIES))  # no registered name, whatever they are
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
    check_strategy(name)


def test_a_strategy_without_cost_support_refuses_cost_objectives(plugin) -> None:
    from mbnas.strategies import STRATEGIES

    plugin.recipe("A search strategy", STRATEGIES)
    (name,) = (n for n in strategy_names() if n not in STRATEGIES_BUILT_IN)
    assert not strategy_definition(name).costs  # off unless declared
    with pytest.raises(ConfigError, match=f"not supported with the {name} strategy"):
        make_strategy(name, ToySpace("toy", N_NODES), decode=decode, costs=("macs",),
                      figures=lambda g: {"macs": 1.0})


STRATEGIES_BUILT_IN = strategy_names()
