"""The DNAS phase on its own: the halves of a fold, the cost term, a checkpoint of
another search refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from mbnas.data.slices import SliceData
from mbnas.errors import ConfigError
from mbnas.scoring.dnas_search import DnasSearch, split_cases
from mbnas.spaces.mbnas import get_space
from mbnas.strategies.dnas import DnasOptions
from mbnas.training.protocol import Protocol
from mbnas.training.runs import RunContext


def test_the_halves_split_every_training_case_once_by_the_seed() -> None:
    ids = [f"case{i}" for i in range(7)]
    first, second = split_cases(ids, 0)
    assert sorted(first + second) == ids and len(first) == 4 and len(second) == 3
    assert split_cases(ids, 0) == (first, second)
    assert any(split_cases(ids, s) != (first, second) for s in range(1, 5))
    with pytest.raises(ConfigError, match="at least 2 training cases"):
        split_cases(["only"], 0)


def test_the_cost_term_is_the_sampled_networks_relative_cost(
        phantom_slices: SliceData, tiny_protocol: Protocol, tmp_path: Path) -> None:
    space = get_space("micro")
    ids = list(phantom_slices.case_ids)
    ctx = RunContext(phantom_slices, (tuple(ids[:3]), tuple(ids[3:])), "cpu")
    seen = []

    def relative(genotype) -> float:  # a real figure would come from the cost oracle
        return 1.0 + sum(n.kernel for n in genotype.nodes) / 100

    def cost(genotype) -> float:
        seen.append(genotype)
        return relative(genotype)

    options = DnasOptions(epochs=2, warmup_epochs=1, cost_weight=1.0)
    search = DnasSearch(space, ctx, tiny_protocol, options, 0, tmp_path / "dnas", cost, "cpu")
    search.train()
    last = search.history[-1]
    assert not last["warmup"] and seen and all(space.contains(g) for g in seen)
    assert last["relative_cost"] == pytest.approx(
        sum(relative(g) for g in seen) / len(seen), rel=1e-6)
    decoded = search.decode(2)
    assert len(decoded) == 2 and all(space.contains(g) for g, _ in decoded)
    other = DnasSearch(space, ctx, tiny_protocol, DnasOptions(epochs=2, arch_lr=0.1), 0,
                       tmp_path / "dnas", None, "cpu")
    with pytest.raises(ConfigError, match="belongs to another DNAS search"):
        other.load()
