"""Every registered block family through the same checks, and the registry itself."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from mbnas.errors import ConfigError, GenotypeError
from mbnas.nn.blocks import (
    BLOCKS,
    block_dims,
    block_names,
    blocks_for,
    get_block,
    register_block,
    unregister_block,
)
from mbnas.spaces.mbnas import (
    KERNELS,
    Genotype,
    Node,
    SearchSpace,
    build_model,
    get_space,
    preset,
)
from mbnas.spaces.mbnas.count import TopologyCounter
from mbnas.spaces.registry import DEFAULT_SPACE, SPACES_REGISTRY, space_definition, space_names
from mbnas.testing.blocks import (
    CHANNELS,
    check_block,
    check_keeps_shape_and_passes_gradients,
    check_stride_two,
)


@pytest.mark.parametrize("name", block_names())  # variants (vgg2) too
@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize(("in_ch", "out_ch"), CHANNELS)
def test_block_keeps_shape_and_passes_gradients(name, kernel, in_ch, out_ch):
    check_keeps_shape_and_passes_gradients(name, kernel, in_ch, out_ch)  # mbnas.testing


@pytest.mark.parametrize("name", block_names())  # variants (vgg2) too
@pytest.mark.parametrize("kernel", KERNELS)
def test_block_with_stride_two_halves_the_resolution(name, kernel):
    check_stride_two(name, kernel)


# The same checks on a 5D tensor for every family whose registration says it supports
# 3D (``@register_block(name, dims=(2, 3))``). 7x7x7 included: at these sizes its
# memory is small (a 7x7x7 kernel has 343 weights per channel pair, 7x the 7x7's).
@pytest.mark.parametrize("name", blocks_for(3))
@pytest.mark.parametrize("kernel", (3, 7))
def test_3d_block_keeps_shape_and_passes_gradients_on_a_volume(name, kernel):
    check_keeps_shape_and_passes_gradients(name, kernel, 5, 12, spatial_dims=3)
    check_stride_two(name, kernel, spatial_dims=3)


def test_the_paper_families_support_3d_and_a_2d_only_plugin_is_refused_in_3d(plugin):
    assert set(blocks_for(3)) >= {"vgg", "vgg2", "residual", "dense", "inception"}
    plugin.load(TOY_FAMILY, BLOCKS)  # registered without dims: 2D only
    assert block_dims("toy") == (2,) and "toy" not in blocks_for(3)
    genotype = Genotype(tuple(Node(n.channels, "toy", 3, n.skip) for n in preset("unet").nodes))
    with pytest.raises(GenotypeError, match="block 'toy' supports 2D only, not 3D"):
        build_model(genotype, 1, 2, base_channels=4, spatial_dims=3)
    with pytest.raises(ValueError, match="spatial_dims must be 2"):
        register_block("flat", dims=(1,))


def test_residual_shortcut_is_always_a_projection():
    # The authors' residual block projects even when the channel count is kept.
    block = get_block("residual")(8, 8, 3)
    assert isinstance(block.shortcut, nn.Conv2d) and block.shortcut.kernel_size == (1, 1)


def test_even_kernel_rejected():
    with pytest.raises(ValueError, match="odd"):
        get_block("vgg")(4, 8, 4)


def test_unknown_block_lists_valid_names():
    with pytest.raises(GenotypeError) as info:
        get_block("transformer")
    for name in block_names():
        assert name in str(info.value)


def test_duplicate_registration_is_an_error():
    with pytest.raises(ValueError, match="already registered"):
        register_block("vgg")(nn.Identity)
    assert get_block("vgg").__name__ == "VGGBlock"


# A fifth family, as a plugin writes it: one file, one registration.
TOY_FAMILY = """
from torch import nn

from mbnas.nn.blocks import register_block


@register_block("toy")
class ToyBlock(nn.Sequential):
    \"\"\"1x1 conv then depthwise kxk conv, BN, act.\"\"\"

    def __init__(self, in_channels, out_channels, kernel_size, stride=1):
        super().__init__(
            nn.Conv2d(in_channels, out_channels, 1, stride=stride),
            nn.Conv2d(out_channels, out_channels, kernel_size, padding=kernel_size // 2,
                      groups=out_channels),
            nn.BatchNorm2d(out_channels),
            nn.LeakyReLU(0.01),
        )
"""


@pytest.fixture
def toy_family(plugin):
    plugin.load(TOY_FAMILY, BLOCKS)
    return "toy"


def _sizes() -> dict[str, int]:
    return {name: get_space(name).size() for name in space_names()}


def test_a_new_family_changes_no_space_that_does_not_name_it(plugin):
    before = _sizes()
    plugin.load(TOY_FAMILY, BLOCKS)
    assert block_names()[-1] == "toy"
    assert _sizes() == before  # every registered space, the paper's included
    for name in space_names():
        assert "toy" not in {o for v in get_space(name).variables() for o in v.options}
    # The paper's MB-NAS space: its topologies x (its blocks x its kernels) ** 10.
    paper = space_definition(DEFAULT_SPACE)
    topologies = TopologyCounter(10, 3, [("down", "same", "up")] * 9 + [("same",)],
                                 [(0,)] * 2 + [(0, 1, 2)] * 8).total()
    assert before[DEFAULT_SPACE] == topologies * (
        len(paper.blocks) * len(paper.kernels)) ** 10


def test_mbnas_space_info_keeps_the_paper_size_with_a_new_family(plugin, capsys):
    from mbnas.cli import main

    size = get_space(DEFAULT_SPACE).size()
    plugin.load(TOY_FAMILY, BLOCKS)
    assert main(["space", "info", "--space", DEFAULT_SPACE]) == 0
    assert f"size: {size:,} valid genotypes" in capsys.readouterr().out


def test_a_space_that_names_the_new_family_searches_it(toy_family, plugin):
    paper = space_definition(DEFAULT_SPACE)
    plugin.load(f"""
from mbnas.spaces.registry import SpaceDefinition, register_space

register_space(SpaceDefinition("with-toy", "abcd", blocks={(*paper.blocks, toy_family)!r}))
""", SPACES_REGISTRY)
    space = get_space("with-toy")
    assert {v.options for v in space.variables() if v.kind == "b"} == \
        {(*paper.blocks, toy_family)}
    assert space.size() == get_space(DEFAULT_SPACE).size() // len(paper.blocks) ** 10 \
        * (len(paper.blocks) + 1) ** 10
    # A genotype using the new family builds and runs.
    unet = preset("unet")
    genotype = Genotype(tuple(Node(n.channels, toy_family, 5, n.skip) for n in unet.nodes))
    assert space.contains(genotype) and not get_space(DEFAULT_SPACE).contains(genotype)
    model = build_model(genotype, 1, 2).eval()
    with torch.no_grad():
        assert model(torch.zeros(1, 1, 32, 32)).shape == (1, 2, 32, 32)
    samples = [space.sample(np.random.default_rng(s)) for s in range(30)]
    assert any(n.block == toy_family for g in samples for n in g.nodes)


def test_a_space_naming_an_unregistered_family_is_refused():
    with pytest.raises(ConfigError, match="space 'odd' searches block 'nope': unknown block"):
        SearchSpace("odd", "b", preset("unet"), blocks=("vgg", "nope"))


def test_unregistered_family_is_rejected_again(toy_family):
    unregister_block(toy_family)
    with pytest.raises(GenotypeError, match="unknown block 'toy'"):
        Node("same", toy_family, 3, 0)
    register_block(toy_family)(nn.Identity)  # the plugin fixture unregisters it again


def test_block_recipe_of_extending_md_passes_the_shared_block_checks(plugin):
    plugin.recipe("A block family", BLOCKS)
    (name,) = (n for n in block_names() if n not in BLOCKS_BUILT_IN)
    check_block(name)  # every kernel, in every dimension its registration supports


BLOCKS_BUILT_IN = block_names()


def test_the_built_in_families_declared_dims_are_the_ones_their_files_register():
    from mbnas.nn.blocks import BUILTIN_DIMS
    from mbnas.nn.blocks.registry import registered_dims

    assert set(BUILTIN_DIMS) == set(BLOCKS_BUILT_IN)
    assert {n: registered_dims(n) for n in BUILTIN_DIMS} == BUILTIN_DIMS
