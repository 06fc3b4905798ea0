"""Every registered block family through the same checks, and the registry itself."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from mbnas.errors import GenotypeError
from mbnas.space import (
    KERNELS,
    Genotype,
    Node,
    build_model,
    get_space,
    preset,
)
from mbnas.space.blocks import (
    all_block_names,
    block_names,
    get_block,
    register_block,
    unregister_block,
)
from mbnas.space.count import TopologyCounter


@pytest.mark.parametrize("name", all_block_names())  # variants (vgg2) too
@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize(("in_ch", "out_ch"), [(5, 12), (12, 12)])
def test_block_keeps_shape_and_passes_gradients(name, kernel, in_ch, out_ch):
    torch.manual_seed(0)
    block = get_block(name)(in_ch, out_ch, kernel)
    x = torch.randn(2, in_ch, 12, 10, requires_grad=True)
    y = block(x)
    assert y.shape == (2, out_ch, 12, 10)
    assert torch.isfinite(y).all()
    y.square().mean().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    for pname, p in block.named_parameters():
        assert p.grad is not None, f"{name}: parameter {pname} gets no gradient"
        assert torch.isfinite(p.grad).all()


@pytest.mark.parametrize("name", all_block_names())  # variants (vgg2) too
@pytest.mark.parametrize("kernel", KERNELS)
def test_block_with_stride_two_halves_the_resolution(name, kernel):
    block = get_block(name)(6, 8, kernel, stride=2)
    assert block(torch.randn(2, 6, 12, 10)).shape == (2, 8, 6, 5)


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
    for name in all_block_names():
        assert name in str(info.value)


def test_duplicate_registration_is_an_error():
    with pytest.raises(ValueError, match="already registered"):
        register_block("vgg")(nn.Identity)
    assert get_block("vgg").__name__ == "VGGBlock"


class _ToyBlock(nn.Sequential):
    """A fifth family: 1x1 conv then depthwise kxk conv, BN, act."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int,
                 stride: int = 1) -> None:
        super().__init__(
            nn.Conv2d(in_channels, out_channels, 1, stride=stride),
            nn.Conv2d(out_channels, out_channels, kernel_size, padding=kernel_size // 2,
                      groups=out_channels),
            nn.BatchNorm2d(out_channels),
            nn.LeakyReLU(0.01),
        )


@pytest.fixture
def toy_family():
    register_block("toy")(_ToyBlock)
    try:
        yield "toy"
    finally:
        unregister_block("toy")


def test_fifth_family_needs_only_a_registration(toy_family):
    assert block_names()[-1] == toy_family
    space = get_space("mbnas")
    b_options = {v.options for v in space.variables() if v.kind == "b"}
    assert b_options == {block_names()}
    # The paper's space: depth 3, kernels 3/5/7, skips 0/1/2, node 10 non-scaling.
    topologies = TopologyCounter(10, 3, [("down", "same", "up")] * 9 + [("same",)],
                                 [(0,)] * 2 + [(0, 1, 2)] * 8).total()
    assert space.size() == topologies * (5 * 3) ** 10
    assert get_space("micro").size() == 15 ** 10
    # A genotype using the new family builds and runs.
    unet = preset("unet")
    genotype = Genotype(tuple(Node(n.channels, toy_family, 5, n.skip) for n in unet.nodes))
    assert space.contains(genotype)
    model = build_model(genotype, 1, 2).eval()
    with torch.no_grad():
        assert model(torch.zeros(1, 1, 32, 32)).shape == (1, 2, 32, 32)
    samples = [space.sample(np.random.default_rng(s)) for s in range(30)]
    assert any(n.block == toy_family for g in samples for n in g.nodes)


def test_unregistered_family_is_rejected_again(toy_family):
    unregister_block(toy_family)
    try:
        with pytest.raises(GenotypeError, match="unknown block 'toy'"):
            Node("same", toy_family, 3, 0)
    finally:
        register_block(toy_family)(_ToyBlock)
