"""The authors' VGG-only class (``NAS_WNet``: VGGBlock2 + He initialisation) in mbnas.

The reference parameter counts were measured by running the authors' ``NAS_WNet``
(github.com/martijnbosma/P3GOMEA-MIS, ``py_src/unet/models/NAS_WNet.py``, built with
the arguments of their ``unet_evaluate.initialize_network`` for ``use_blocks=False``:
convolutional pooling and upsampling, pool kernels 2, every conv kernel k) outside this
project, on a 32x32 input, for both U-Net topologies: mbnas's preset (skips on nodes
8-10) and the authors' example (``NAS_WNet_blocks_convs.py``, skips 0,0,0,0,0,1,2,1,1,1).
"""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

from mbnas.costs.measure import count_parameters
from mbnas.errors import ConfigError
from mbnas.nn.weight_init import INITS, initialise
from mbnas.spaces.mbnas import (
    Genotype,
    block_names,
    build_model,
    from_authors_string,
    get_space,
    preset,
)
from mbnas.spaces.mbnas.definitions import with_block
from mbnas.spaces.registry import space_definition, space_names
from mbnas.training.protocol import get_protocol

AUTHORS_UNET = "0000100020003000300030013002200110010001"
TOPOLOGIES = {"mbnas unet": preset("unet"), "authors' unet": preset("unet-authors")}
# topology, k, in_channels, classes, base channels -> parameters of the authors' NAS_WNet
AUTHORS_VGG_ONLY = [
    ("mbnas unet", 3, 1, 2, 32, 5_474_466), ("mbnas unet", 3, 2, 3, 32, 5_474_787),
    ("mbnas unet", 5, 1, 2, 32, 9_767_074), ("mbnas unet", 5, 1, 2, 8, 612_202),
    ("mbnas unet", 7, 1, 2, 32, 16_205_986), ("mbnas unet", 7, 2, 3, 32, 16_206_307),
    ("authors' unet", 3, 1, 2, 32, 6_604_962), ("authors' unet", 3, 1, 2, 8, 414_570),
    ("authors' unet", 5, 1, 2, 32, 12_208_290), ("authors' unet", 5, 2, 3, 32, 12_208_611),
    ("authors' unet", 7, 1, 2, 32, 20_613_282), ("authors' unet", 7, 1, 2, 8, 1_290_090),
]


def vgg_only(topology: Genotype, kernel: int, block: str = "vgg2") -> Genotype:
    nodes = with_block(topology, block).nodes
    return Genotype(tuple(dataclasses.replace(n, kernel=kernel) for n in nodes))


@pytest.mark.parametrize(("topology", "k", "c", "n", "base", "params"), AUTHORS_VGG_ONLY)
def test_vgg2_networks_have_the_parameters_of_the_authors_class(topology, k, c, n, base,
                                                                params):
    model = build_model(vgg_only(TOPOLOGIES[topology], k), c, n, base)
    assert count_parameters(model) == params
    assert model(torch.zeros(1, c, 32, 32)).shape == (1, n, 32, 32)
    if k > 3:  # mbnas's own VGG block (k x k twice) is the larger network
        assert count_parameters(build_model(vgg_only(TOPOLOGIES[topology], k, "vgg"),
                                            c, n, base)) > params


def test_the_authors_unet_topology_is_a_preset_beside_mbnas_unet() -> None:
    authors = preset("unet-authors")
    assert authors == from_authors_string(AUTHORS_UNET) and get_space("mbnas").contains(authors)
    assert [n.channels for n in authors.nodes] == [n.channels for n in preset("unet").nodes]
    assert count_parameters(build_model(authors, 1, 2)) == 6_604_962  # NAS_WNet at k = 3
    assert count_parameters(build_model(preset("unet"), 1, 2)) == 5_474_466


def test_vgg2_joins_no_space_unless_asked() -> None:
    assert "vgg2" in block_names()  # registered like any block; named by no space
    for name in space_names():
        assert "vgg2" not in space_definition(name).blocks
        assert all("vgg2" not in v.options for v in get_space(name).variables())
    macro = get_space("macro", block="vgg2")
    assert {n.block for n in macro.base.nodes} == {"vgg2"}
    assert macro.size() == get_space("macro").size()
    assert macro.contains(with_block(preset("unet"), "vgg2"))
    assert not macro.contains(preset("unet"))
    with pytest.raises(ConfigError, match="searches the blocks"):
        get_space("mbnas", block="vgg2")
    with pytest.raises(ConfigError, match="not one of"):
        get_space("macro", block="residual")


def test_he_initialisation_is_the_authors_and_part_of_the_protocol_key() -> None:
    torch.manual_seed(0)
    model = initialise(build_model(vgg_only(preset("unet"), 5), 1, 2, 8), "he")
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d | nn.ConvTranspose2d)]
    for conv in convs:
        if conv.bias is not None:
            assert torch.count_nonzero(conv.bias) == 0
    big = max(convs, key=lambda m: m.weight.numel())
    fan_in = big.weight[0].numel() if isinstance(big, nn.Conv2d) else \
        big.weight.shape[1] * big.weight[0, 0].numel()
    expected = (2 / (1 + 0.01 ** 2) / fan_in) ** 0.5  # kaiming_normal_(a=0.01), fan in
    assert big.weight.std().item() == pytest.approx(expected, rel=0.05)
    quick = get_protocol("quick")
    assert set(INITS) == {"default", "he"} and quick.init == "default"
    assert "init" not in quick.to_dict()  # keys and config files of older runs unchanged
    he = get_protocol("quick", init="he")
    assert he.key != quick.key and he.to_dict()["init"] == "he"
    with pytest.raises(ConfigError, match="init must be one of"):
        get_protocol("quick", init="xavier")
