"""Exact counting (DP) against brute force, and exactly uniform sampling."""

from __future__ import annotations

import collections
import math

import numpy as np
import pytest
from scipy.stats import chisquare

import mbnas.spaces.mbnas.definitions as spaces_module
from mbnas.spaces.mbnas import (
    Genotype,
    Node,
    SearchSpace,
    get_space,
    kernel_space,
    preset,
    space_size,
)
from mbnas.spaces.mbnas.count import TopologyCounter, brute_force_size, enumerate_genotypes
from mbnas.spaces.mbnas.genotype import KERNELS
from mbnas.spaces.registry import PAPER_SIZE_NOTE, space_definition


@pytest.mark.parametrize("n_nodes", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("max_depth", [0, 1, 2, 3])
def test_dp_equals_brute_force(n_nodes, max_depth):
    assert TopologyCounter(n_nodes, max_depth).total() == brute_force_size(n_nodes, max_depth)


def test_dp_equals_brute_force_with_blocks_and_kernels():
    blocks, kernels = ("vgg", "dense"), (1, 3)
    assert space_size(3, 2, n_blocks=2, n_kernels=2) == brute_force_size(3, 2, blocks, kernels)


def _flat(n: int) -> Genotype:
    return Genotype(tuple(Node("same", "vgg", 3, 0) for _ in range(n)))


@pytest.mark.parametrize("searched", ["abcd", "ad", "bc", "c", "a", "d"])
def test_restricted_space_size_equals_brute_force(searched):
    blocks, kernels = ("vgg", "dense"), (1, 3)
    base = Genotype((Node("down", "vgg", 3, 0), Node("up", "vgg", 3, 0),
                     Node("same", "vgg", 3, 1)))
    space = SearchSpace("tiny", searched, base, max_depth=2, blocks=blocks, kernels=kernels)
    members = [g for g in enumerate_genotypes(3, 2, blocks, kernels) if space.contains(g)]
    assert space.size() == len(members) > 0


def test_paper_space_sizes_are_consistent_and_documented():
    mbnas, macro, micro = (get_space(n).size() for n in ("mbnas", "macro", "micro"))
    # The paper's rules: depth <= 3, d in 0..2 (none on nodes 1 and 2), node 10
    # non-scaling; the blocks and kernels each space names.
    paper = TopologyCounter(10, 3, [("down", "same", "up")] * 9 + [("same",)],
                            [(0,)] * 2 + [(0, 1, 2)] * 8).total()

    def cells(name: str) -> int:
        """Block x kernel options of one node of space ``name``."""
        definition = space_definition(name)
        return len(definition.blocks) * len(definition.kernels or KERNELS)

    assert macro == paper
    assert mbnas == macro * cells("mbnas") ** 10
    assert micro == cells("micro") ** 10
    assert kernel_space(preset("unet")).size() == len(space_definition("mbnas").kernels) ** 10
    wide = get_space("mbnas-wide").size()
    assert wide == space_size() == TopologyCounter(10, 4).total() * cells("mbnas-wide") ** 10
    # The figures written in the docstring are the computed ones.
    assert f"{macro:,} valid topologies" in spaces_module.__doc__
    assert f"{mbnas:,}" in spaces_module.__doc__
    assert f"({mbnas:.3g})".replace("+", "") in spaces_module.__doc__
    shallow = TopologyCounter(10, 2, [("down", "same", "up")] * 9 + [("same",)],
                              [(0,)] * 2 + [(0, 1, 2)] * 8).total()
    assert f"only {macro - shallow:,} reach level 3" in spaces_module.__doc__
    # Every digit combination of the authors' alphabet (alphabets/NAS_MIS.txt: depth
    # 1 2 3 4 4 4 4 3 2 1 values, 3 convs, skips 1 1 3 ... 3) with 4 blocks.
    raw = math.prod([1, 2, 3, 4, 4, 4, 4, 3, 2, 1]) * 3 ** 10 * 3 ** 8 * 4 ** 10
    assert f"{raw:.3g}".replace("+", "") in PAPER_SIZE_NOTE


@pytest.mark.parametrize(
    ("searched", "n_nodes", "blocks", "kernels"),
    [("ad", 5, ("vgg",), (3,)), ("abcd", 3, ("vgg", "dense"), (1, 3))],
)
def test_sampling_is_exactly_uniform(searched, n_nodes, blocks, kernels):
    space = SearchSpace("tiny", searched, _flat(n_nodes), max_depth=2, blocks=blocks,
                        kernels=kernels)
    members = list(enumerate_genotypes(n_nodes, 2, blocks, kernels))
    assert len(members) == space.size()
    rng = np.random.default_rng(1234)
    draws = collections.Counter(space.sample(rng) for _ in range(15 * len(members)))
    assert set(draws) == set(members)  # every genotype reached, nothing else
    observed = [draws[g] for g in members]
    assert chisquare(observed).pvalue > 1e-3
