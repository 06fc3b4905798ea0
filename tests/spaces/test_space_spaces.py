"""The search-space interface shared with the search strategies."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from mbnas.errors import ConfigError, GenotypeError
from mbnas.spaces.mbnas import (
    KERNELS,
    SPACES,
    Genotype,
    Node,
    SearchSpace,
    block_names,
    get_space,
    kernel_space,
    preset,
    register_space,
)
from mbnas.spaces.mbnas.genotype import CHANNEL_OPTIONS as CHANNELS
from mbnas.spaces.mbnas.genotype import DEFAULT_MAX_DEPTH, SKIPS
from mbnas.spaces.registry import PAPER_KERNELS, SpaceDefinition, space_definition, space_names
from mbnas.testing.spaces import check_neighbours, check_sampling, check_space, check_variables

SPACE_CHECKS = (check_variables, check_sampling, check_neighbours)

ALL = (*SPACES, "bilevel-kernel")
# Bilevel-NAS phase 2 is no registered space: kernel_space() of a topology.
KERNEL_PHASE = SpaceDefinition("bilevel-kernel", "c", kernels=PAPER_KERNELS)


def _definition(name: str) -> SpaceDefinition:
    return KERNEL_PHASE if name == "bilevel-kernel" else space_definition(name)


def _space(name: str) -> SearchSpace:
    if name == "bilevel-kernel":
        return kernel_space(get_space("macro").sample(np.random.default_rng(7)))
    return get_space(name)


def _vector(space: SearchSpace, g: Genotype) -> tuple:
    return tuple(space.value(g, v) for v in space.variables())


@pytest.mark.parametrize("name", ALL)
def test_variables(name):
    # The expectations are the registered definition's, option by option.
    space, definition = _space(name), _definition(name)
    variables = space.variables()
    assert {v.kind for v in variables} == set(definition.searched)
    assert len(variables) == 10 * len(definition.searched)
    assert len({v.name for v in variables}) == len(variables)
    for v in variables:
        assert v.name == f"{v.kind}{v.node}" and 1 <= v.node <= 10
    options = {v.kind: v.options for v in variables}
    depth = DEFAULT_MAX_DEPTH if definition.max_depth is None else definition.max_depth
    expected = {"a": tuple(range(depth + 1)), "b": definition.blocks,
                "c": definition.kernels or KERNELS, "d": definition.skips or SKIPS}
    assert options == {kind: expected[kind] for kind in definition.searched}
    assert set(definition.blocks) <= set(block_names())  # a space names registered blocks


@pytest.mark.parametrize("check", SPACE_CHECKS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("name", ALL)
def test_every_space_passes_the_shared_checks(name, check):
    check(_space(name))  # mbnas.testing.spaces: the kit a plugin space runs too


@pytest.mark.parametrize("name", ALL)
def test_sampling_is_diverse(name):
    space = _space(name)
    rng = np.random.default_rng(3)
    assert len({space.sample(rng) for _ in range(20)}) > 15


def test_sampling_covers_the_options():
    space = get_space("mbnas")
    rng = np.random.default_rng(11)
    samples = [space.sample(rng) for _ in range(300)]
    for v in space.variables():
        seen = {space.value(g, v) for g in samples}
        if v.kind in "bc":
            assert seen == set(v.options), v.name
    assert {lv for g in samples for lv in g.levels()} == {0, 1, 2, 3}  # the authors' cap
    assert {n.skip for g in samples for n in g.nodes} == {0, 1, 2}
    assert {n.channels for g in samples for n in g.nodes} == {"down", "same", "up"}
    assert all(g.nodes[-1].channels == "same" for g in samples)  # the authors' last block
    wide = get_space("mbnas-wide")
    samples = [wide.sample(rng) for _ in range(300)]
    assert {n.skip for g in samples for n in g.nodes} == {0, 1, 2, 3}
    assert {g.nodes[-1].channels for g in samples} == {"same", "up"}


@pytest.mark.parametrize("name", ALL)
def test_neighbours_are_valid_single_changes(name):
    space = _space(name)
    rng = np.random.default_rng(2)
    starts = [space.sample(rng) for _ in range(3)]
    if space.contains(preset("unet")):  # the start of the paper's searches
        starts.append(preset("unet"))
    for g in starts:
        neighbours = space.neighbours(g)
        assert neighbours and len(set(neighbours)) == len(neighbours)
        base = _vector(space, g)
        for n in neighbours:
            assert space.contains(n)
            assert sum(x != y for x, y in zip(base, _vector(space, n), strict=True)) == 1


def _members(space: SearchSpace) -> list[Genotype]:
    """Brute force: every combination of the searched options that the space contains."""
    per_node = []
    for node in space.base.nodes:
        choices = [
            CHANNELS if "a" in space.searched else (node.channels,),
            space.options["b"] if "b" in space.searched else (node.block,),
            space.options["c"] if "c" in space.searched else (node.kernel,),
            (0, 1, 2, 3) if "d" in space.searched else (node.skip,),
        ]
        per_node.append([Node(*o) for o in itertools.product(*choices)])
    members = []
    for nodes in itertools.product(*per_node):
        try:
            g = Genotype(nodes)
        except GenotypeError:
            continue
        if space.contains(g):
            members.append(g)
    return members


@pytest.mark.parametrize(("searched", "n_nodes"), [("abcd", 3), ("ad", 5), ("bc", 4), ("c", 4)])
def test_neighbours_include_every_valid_single_change(searched, n_nodes):
    """Brute force on a small space: all members differing in exactly one variable."""
    cells = ["down", "same", "up", "same", "same"][:n_nodes]
    base = Genotype(tuple(Node(c, "vgg", 3, 1 if i == 3 else 0) for i, c in enumerate(cells)))
    space = SearchSpace("tiny", searched, base, max_depth=2, blocks=("vgg", "dense"),
                        kernels=(1, 3))
    members = _members(space)
    assert len(members) == space.size()
    rng = np.random.default_rng(0)
    for g in [base] + [members[i] for i in rng.choice(len(members), 5)]:
        vec = _vector(space, g)
        expected = {
            m for m in members
            if sum(x != y for x, y in zip(vec, _vector(space, m), strict=True)) == 1
        }
        assert set(space.neighbours(g)) == expected


def test_level_variable_moves_one_node():
    space = get_space("macro")
    unet = preset("unet")
    a4 = next(v for v in space.variables() if v.name == "a4")
    assert space.value(unet, a4) == 3
    moved = space.with_value(unet, a4, 2)
    assert moved.levels() == (0, 1, 2, 3, 2, 3, 3, 2, 1, 0, 0)
    assert [n.channels for n in moved.nodes[3:5]] == ["up", "down"]
    assert moved.skip_sources(8) == (4,)  # node 4 is now the nearest at level 2
    assert space.with_value(unet, a4, 1) is None  # node 3 -> 4 would skip a level


def test_level_change_that_breaks_a_skip_gives_none():
    g = Genotype(tuple(Node("same", "vgg", 3, 2 if i == 3 else 0) for i in range(10)))
    assert g.skip_sources(4) == (0,)  # second-nearest of nodes 1 and 0 at level 0
    space = get_space("macro")
    a1 = next(v for v in space.variables() if v.name == "a1")
    assert space.with_value(g, a1, 1) is None  # node 4 keeps only the stem as candidate
    no_skip = Genotype(tuple(_replace(n, skip=0) for n in g.nodes))
    assert space.with_value(no_skip, a1, 1).levels()[:4] == (0, 1, 0, 0)


def _replace(node: Node, **changes) -> Node:
    return Node(**{**node.to_dict(), **changes})


def test_with_value_rejects_foreign_options():
    space = get_space("micro")
    b1 = space.variables()[0]
    with pytest.raises(GenotypeError, match="not an option of b1"):
        space.with_value(preset("unet"), b1, "transformer")


def test_fixed_variables_are_enforced():
    macro, micro = get_space("macro"), get_space("micro")
    unet = preset("unet")
    assert macro.contains(unet) and micro.contains(unet)
    dense = Genotype((Node("down", "dense", 3, 0), *unet.nodes[1:]))
    assert not macro.contains(dense) and micro.contains(dense)
    flat = Genotype(tuple(Node("same", "vgg", 3, 0) for _ in range(10)))
    assert macro.contains(flat) and not micro.contains(flat)
    assert not get_space("mbnas").contains(Genotype(unet.nodes[:9]))
    # The paper's spaces: a single skip (no "both"), kernels 3-7, node 10 non-scaling.
    both = Genotype(tuple(Node("same", "vgg", 3, 3 if i == 3 else 0) for i in range(10)))
    one_by_one = Genotype(tuple(Node("same", "vgg", 1, 0) for _ in range(10)))
    last_up = Genotype(tuple(Node(c, "vgg", 3, 0) for c in ["same"] * 8 + ["down", "up"]))
    stem_skip = Genotype(tuple(Node("same", "vgg", 3, 1 if i == 1 else 0) for i in range(10)))
    for g in (both, one_by_one, last_up, stem_skip):
        assert not get_space("mbnas").contains(g) and get_space("mbnas-wide").contains(g)


def test_kernel_space_searches_only_kernels():
    topology = get_space("macro").sample(np.random.default_rng(4))
    space = kernel_space(topology)
    assert space.contains(topology)
    for n in space.neighbours(topology):
        assert n.levels() == topology.levels()
        assert [x.skip for x in n.nodes] == [x.skip for x in topology.nodes]
        assert [x.block for x in n.nodes] == ["vgg"] * 10
    assert len(space.neighbours(topology)) == 10 * 2  # kernels 3, 5, 7
    deep = Genotype(tuple(Node(c, "vgg", 3, 0) for c in ["down"] * 5 + ["up"] * 5))
    assert kernel_space(deep).contains(deep)  # phase 2 of a max_depth-5 search
    with pytest.raises(GenotypeError, match="deeper than max_depth 4"):
        kernel_space(deep, max_depth=4)


def test_max_depth_limits_the_space():
    space = get_space("mbnas", max_depth=2)
    rng = np.random.default_rng(0)
    assert all(max(space.sample(rng).levels()) <= 2 for _ in range(100))
    assert space.size() < get_space("mbnas").size()
    with pytest.raises(ConfigError, match="micro.*max_depth 2"):
        get_space("micro", max_depth=2)


def test_unknown_space_lists_names():
    with pytest.raises(ConfigError) as info:
        get_space("nasnet")
    assert str(info.value).endswith("valid: " + ", ".join(space_names()))
    with pytest.raises(ValueError, match="already registered"):
        register_space(SpaceDefinition("macro", "ad"))
    with pytest.raises(ConfigError, match="unknown search space 'bilevel'"):
        get_space("bilevel")  # a strategy over the macro space, not a space


def test_space_recipe_of_extending_md_passes_the_shared_space_checks(plugin):
    from mbnas.spaces.registry import SPACES_REGISTRY

    built_in = space_names()
    plugin.recipe("A search space", SPACES_REGISTRY)
    (name,) = (n for n in space_names() if n not in built_in)
    test_variables(name)
    check_space(name)  # the kit (mbnas.testing)
    test_neighbours_are_valid_single_changes(name)
    assert 0 < get_space(name).size() < get_space(built_in[0]).size()
