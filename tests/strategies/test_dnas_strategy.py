"""The ask/tell half of `--strategy dnas` (no torch): it asks for the networks its DNAS
phase decoded, in order, within the budget; best is the best stand-alone score; a
checkpoint resumes it at every point; its options are checked."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mbnas.errors import ConfigError
from mbnas.strategies import make_strategy, strategy_definition, strategy_options
from mbnas.strategies.dnas import DnasOptions
from mbnas.testing.toy_space import ToyGenotype, ToySpace, drive, separable_objective

space = ToySpace("toy", 3)
objective = separable_objective(3, seed=3)


def _offered(k: int, seed: int = 0) -> list[ToyGenotype]:
    rng = np.random.default_rng(seed)
    out: list[ToyGenotype] = []
    while len(out) < k:
        g = space.sample(rng)
        if g.key not in {x.key for x in out}:
            out.append(g)
    return out


def _build(budget: int = 10):
    return make_strategy("dnas", space, budget=budget, rng=0, decode=ToyGenotype.from_dict)


def test_asks_the_offered_networks_in_order_and_keeps_the_best() -> None:
    strategy = _build()
    with pytest.raises(RuntimeError, match="offers them first"):
        strategy.ask()
    offered = _offered(4)
    strategy.offer(offered, [-1.0, -2.0, -3.0, -4.0])
    asked = [g for batch in drive(strategy, objective) for g in batch]
    assert [g.key for g in asked] == [g.key for g in offered]
    assert strategy.stop_reason == "decoded"
    assert strategy.best[1] == max(objective(g) for g in offered)
    capped = _build(budget=2)
    capped.offer(offered, [0.0] * 4)
    assert [g.key for b in drive(capped, objective) for g in b] == [g.key for g in offered[:2]]
    assert capped.stop_reason == "budget"


@pytest.mark.parametrize("pending", [False, True])
def test_resume_from_json_gives_the_same_history(pending: bool) -> None:
    offered = _offered(3)
    reference = _build()
    reference.offer(offered, [0.0] * 3)
    drive(reference, objective)
    first = _build()
    first.offer(offered, [0.0] * 3)
    if pending:
        first.ask()
    state = json.loads(json.dumps(first.state_dict()))
    resumed = _build()
    resumed.load_state_dict(state)
    resumed.offer(offered, [0.0] * 3)  # the driver offers again after a resume
    drive(resumed, objective)
    assert [e.to_dict() for e in resumed.history] == [e.to_dict() for e in reference.history]
    with pytest.raises(RuntimeError, match="other networks"):
        resumed.offer(_offered(3, seed=9), [0.0] * 3)


def test_options_are_checked_and_only_changed_ones_are_kept() -> None:
    assert strategy_definition("dnas").one_shot and strategy_definition("dnas").card
    options = strategy_options("dnas", {"arch_lr": "0.01", "epochs": "4",
                                        "warmup_epochs": 0})
    assert options == DnasOptions(arch_lr=0.01, epochs=4, warmup_epochs=0)
    assert options.to_dict() == {"arch_lr": 0.01, "epochs": 4, "warmup_epochs": 0}
    assert DnasOptions.from_dict(options.to_dict()) == options
    # The temperature: tau_start after the warm-up, linearly to tau_end at the last epoch.
    o = DnasOptions(warmup_epochs=1, tau_start=10.0, tau_end=0.1)
    assert [round(o.tau(e, 4), 3) for e in range(4)] == [10.0, 10.0, 5.05, 0.1]
    for bad in ({"tau_end": 0}, {"epochs": "2.5"}, {"cost": "latency"}, {"beam": 0},
                {"entropy_weight": "nan"}, {"unknown": 1}):
        with pytest.raises(ConfigError):
            strategy_options("dnas", bad)
    with pytest.raises(ConfigError, match="takes no options"):
        strategy_options("local", {"arch_lr": 1})  # local declares none
