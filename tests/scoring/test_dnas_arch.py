"""The DNAS distribution: every sample is a valid network of its space, whatever the
architecture parameters; decoding builds; probabilities and top-K are those of the
sequential masked distribution (checked exhaustively on a small space)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mbnas.scoring.dnas_arch import ArchitectureDistribution
from mbnas.spaces.mbnas import get_space
from mbnas.spaces.mbnas.build import build_model
from mbnas.spaces.mbnas.count import enumerate_genotypes
from mbnas.spaces.mbnas.definitions import SearchSpace
from mbnas.spaces.mbnas.genotype import Genotype, Node
from mbnas.spaces.registry import space_names


def _randomise(dist: ArchitectureDistribution, seed: int, scale: float) -> None:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for t in dist.logits.values():
            t.copy_(torch.randn(t.shape, generator=gen) * scale)


@pytest.mark.parametrize("name", space_names())
def test_every_sample_is_valid_at_random_parameters(name: str) -> None:
    space = get_space(name)
    dist = ArchitectureDistribution(space)
    assert set(dist.logits) == {v.name for v in space.variables()}
    gen = torch.Generator().manual_seed(1)
    seen = set()
    # Sharp parameters push towards invalid corners (deep levels, skips that do not exist)
    for trial, scale in enumerate((0.0, 5.0, 50.0)):
        _randomise(dist, trial, scale)
        for _ in range(40):
            sample = dist.sample(gen, tau=1.0)
            assert space.contains(sample.genotype), sample.genotype.describe()
            assert {f"{k}{i}" for i, k in sample.gates} == set(dist.logits)
            assert all(float(g.detach()) == pytest.approx(1.0) for g in sample.gates.values())
            seen.add(sample.genotype.key)
        assert space.contains(dist.argmax())
    assert len(seen) > 15  # the samples are random, not one network


def test_gates_carry_the_gradient_of_the_relaxed_sample() -> None:
    space = get_space("mbnas")
    dist = ArchitectureDistribution(space)
    sample = dist.sample(torch.Generator().manual_seed(0), tau=1.0)
    torch.stack(list(sample.gates.values())).sum().backward()
    b1 = dist.logits["b1"].grad
    assert b1 is not None and b1.abs().sum() > 0
    # Node 1 takes no skip in this space: one valid option, no gradient.
    assert dist.logits["d1"].grad is None or dist.logits["d1"].grad.abs().sum() == 0


@pytest.mark.parametrize("name", space_names())
def test_decoded_networks_build(name: str) -> None:
    space = get_space(name)
    dist = ArchitectureDistribution(space)
    _randomise(dist, 3, 3.0)
    top = dist.top_k(3)
    assert top[0][0] == dist.argmax() or top[0][1] >= dist.log_prob(dist.argmax())
    assert len({g.key for g, _ in top}) == 3
    dims = space.spatial_dims  # a 3D space's networks are built and run as 3D
    shape = (1, 1, 32, 32, 32) if dims == 3 else (1, 1, 32, 32)
    for genotype, _ in top:
        model = build_model(genotype, 1, 2, 4, spatial_dims=dims)
        out = model(torch.zeros(shape))
        assert out.shape == (1, 2, *shape[2:])


def _tiny_space() -> SearchSpace:
    """4 nodes down to level 2 (the level and skip masks at work), two blocks, one kernel:
    608 networks, and a brute force over 24**4 node combinations (a second kernel would
    make it 48**4, 16 times the work)."""
    base = Genotype(tuple(Node("same", "vgg", 3, 0) for _ in range(4)))
    return SearchSpace("tiny", "abcd", base, max_depth=2, blocks=("vgg", "residual"),
                       kernels=(3,), skips=(0, 1, 2))


def test_probabilities_and_top_k_are_exact_on_a_small_space() -> None:
    space = _tiny_space()
    dist = ArchitectureDistribution(space)
    _randomise(dist, 7, 2.0)
    every = [g for g in enumerate_genotypes(4, 2, ("vgg", "residual"), (3,))
             if space.contains(g)]
    assert len(every) == space.size()
    logps = {g.key: dist.log_prob(g) for g in every}
    assert math.fsum(math.exp(v) for v in logps.values()) == pytest.approx(1.0)
    best = sorted(logps.values(), reverse=True)
    top = dist.top_k(10, beam=len(every))
    assert [lp for _, lp in top] == pytest.approx(best[:10], rel=1e-6)
    assert all(logps[g.key] == pytest.approx(lp) for g, lp in top)
    # Sampling follows those probabilities: the frequencies of 1000 draws.
    gen, draws = torch.Generator().manual_seed(0), 1000
    counts: dict[str, int] = {}
    for _ in range(draws):
        key = dist.sample(gen, tau=1.0).genotype.key
        counts[key] = counts.get(key, 0) + 1
    for genotype, lp in top[:3]:
        p = math.exp(lp)
        assert counts.get(genotype.key, 0) / draws == pytest.approx(
            p, abs=4 * np.sqrt(p / draws))
