"""The supernet: a genotype's path is exactly the network ``build_network`` builds."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from mbnas.errors import GenotypeError
from mbnas.scoring.supernet import SuperNet
from mbnas.spaces.mbnas import build_network, get_space, preset

SPACES = ("mbnas", "micro", "macro")


@pytest.mark.parametrize("space_name", SPACES)
def test_a_subnetwork_copied_into_build_network_gives_identical_outputs(space_name: str
                                                                        ) -> None:
    torch.manual_seed(0)
    space = get_space(space_name)
    net = SuperNet(space, 2, 3, base_channels=4)
    rng = np.random.default_rng(7)
    x = torch.randn(2, 2, 32, 32)
    net.train()
    with torch.no_grad():  # BatchNorm statistics that are not the initial ones
        for _ in range(4):
            net(x * 3 + 1, space.sample(rng))
    kernels = set()
    for _ in range(4):
        genotype = space.sample(rng)
        kernels |= {n.kernel for n in genotype.nodes}
        net.recalibrate_bn(genotype, [x * 2 - 1, x])
        fresh = build_network(genotype, 2, 3, base_channels=4)
        fresh.load_state_dict(net.subnet_state_dict(genotype))  # strict: same names, shapes
        fresh.eval()
        with torch.no_grad():
            assert torch.equal(net(x, genotype), fresh(x))
            assert torch.equal(net.subnet(genotype)(x), fresh(x))
    if "c" in space.searched:  # the cropped kernels were among those compared
        assert len(kernels) > 1


def test_smaller_kernels_share_the_centre_of_the_largest() -> None:
    space = get_space("micro")
    net = SuperNet(space, 1, 2, base_channels=4)
    unet = preset("unet")
    genotype = unet.__class__(tuple(n.__class__(n.channels, "vgg", 3, n.skip)
                                    for n in unet.nodes))
    state = net.subnet_state_dict(genotype)
    slot = net.cells[net._slot_of(genotype, 1)]
    big = slot.block[0][0].weight  # 7x7
    assert big.shape[-1] == 7
    assert torch.equal(state["cells.0.block.0.0.weight"], big[..., 2:5, 2:5].detach())


def test_recalibration_sets_the_statistics_of_the_path_and_leaves_eval_mode() -> None:
    torch.manual_seed(1)
    space = get_space("micro")
    net = SuperNet(space, 1, 2, base_channels=4)
    genotype = space.sample(np.random.default_rng(3))
    i = next(i for i, n in enumerate(genotype.nodes, 1) if n.kernel != net.max_kernel)
    norm = next(m for m in net.cells[net._slot_of(genotype, i)].modules()
                if isinstance(m, nn.BatchNorm2d))
    assert float(norm.running_mean.abs().sum()) == 0.0
    seen = net.recalibrate_bn(genotype, [torch.randn(4, 1, 32, 32) * 3 + 2 for _ in range(3)])
    assert seen == 3 and not net.training
    assert int(norm.num_batches_tracked) == 3  # the cropped path updated the shared buffers
    assert float(norm.running_mean.abs().sum()) > 0.0


def test_gates_multiply_a_node_and_receive_its_gradient() -> None:
    torch.manual_seed(2)
    space = get_space("macro")
    net = SuperNet(space, 1, 2, base_channels=4)
    genotype = space.sample(np.random.default_rng(4))
    x = torch.randn(2, 1, 32, 32)
    net.eval()
    gate = torch.ones((), requires_grad=True)
    out = net(x, genotype, gates={(5, "a"): gate})
    assert torch.equal(out, net(x, genotype))  # a gate of 1.0 changes nothing forward
    out.square().sum().backward()
    assert gate.grad is not None and float(gate.grad) != 0.0
    half = net(x, genotype, gates={(5, "a"): torch.tensor(0.5)})
    assert not torch.equal(half, out)


def test_a_genotype_outside_the_space_is_refused() -> None:
    net = SuperNet(get_space("macro"), 1, 2, base_channels=4)
    genotype = get_space("mbnas").sample(np.random.default_rng(0))
    genotype = genotype.__class__(tuple(n.__class__(n.channels, "dense", n.kernel, n.skip)
                                        for n in genotype.nodes))
    with pytest.raises(GenotypeError, match="not a network of the supernet's space"):
        net.subnet(genotype)


def test_a_volume_supernet_gives_the_3d_networks_of_build_network() -> None:
    torch.manual_seed(3)
    space = get_space("macro")
    net = SuperNet(space, 1, 2, base_channels=4, spatial_dims=3)
    rng = np.random.default_rng(5)
    x = torch.randn(2, 1, 16, 16, 16)
    for _ in range(2):
        genotype = space.sample(rng)
        net.recalibrate_bn(genotype, [x * 2 + 1])
        fresh = build_network(genotype, 1, 2, base_channels=4, spatial_dims=3)
        fresh.load_state_dict(net.subnet_state_dict(genotype))
        fresh.eval()
        with torch.no_grad():
            assert torch.equal(net(x, genotype), fresh(x))
