"""Genotype -> network: forward passes, a reference U-Net, and the baselines."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from mbnas.costs.measure import count_macs, count_parameters
from mbnas.errors import ConfigError, GenotypeError
from mbnas.spaces.mbnas import (
    SPACES,
    Baseline,
    Genotype,
    architecture_from_dict,
    build_model,
    get_space,
    kernel_space,
    preset,
)


def _forward(model: nn.Module, size: int, in_channels: int) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return model(torch.randn(1, in_channels, size, size))


@pytest.mark.parametrize("name", SPACES)
def test_random_genotypes_build_and_run(name):
    space = get_space(name)
    rng = np.random.default_rng(21)
    for i in range(3):
        genotype = space.sample(rng)
        model = build_model(genotype, 2, 3)
        out = _forward(model, 32, 2)
        assert out.shape == (1, 3, 32, 32)
        assert torch.isfinite(out).all()
        if i == 0:
            assert _forward(model, 128, 2).shape == (1, 3, 128, 128)


def test_kernel_space_and_deepest_genotypes_run_at_128():
    deepest = Genotype.from_dict({"nodes": [
        {"channels": c, "block": b, "kernel": k, "skip": d}
        for c, b, k, d in [("down", "dense", 7, 0), ("down", "inception", 5, 0),
                           ("down", "residual", 1, 0), ("down", "vgg", 3, 0),
                           ("up", "dense", 3, 0), ("up", "inception", 7, 1),
                           ("up", "residual", 5, 1), ("up", "vgg", 1, 1),
                           ("same", "inception", 3, 1), ("same", "residual", 3, 1)]
    ]})
    assert deepest.depth() == 4
    assert get_space("mbnas-wide").contains(deepest)
    assert _forward(build_model(deepest, 1, 2), 128, 1).shape == (1, 2, 128, 128)
    genotype = kernel_space(preset("unet")).sample(np.random.default_rng(0))
    assert _forward(build_model(genotype, 1, 2), 128, 1).shape == (1, 2, 128, 128)


def test_training_step_reaches_every_parameter():
    genotype = get_space("mbnas").sample(np.random.default_rng(8))
    model = build_model(genotype, 1, 2)
    loss = model(torch.randn(2, 1, 32, 32)).logsumexp(1).mean()
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


def test_input_size_must_be_divisible():
    model = build_model(preset("unet"), 1, 2)
    with pytest.raises(ConfigError, match=r"divisible by 8"):
        _forward(model, 36, 1)


def test_bad_channels_rejected():
    with pytest.raises(ConfigError, match="n_classes must be a positive integer"):
        build_model(preset("unet"), 1, 0)
    with pytest.raises(GenotypeError, match="expected a Genotype or a Baseline"):
        build_model("unet", 1, 2)  # type: ignore[arg-type]


# -- an independent U-Net written from the decisions, to check the preset's build -----
# The authors' wiring (see mbnas.spaces.mbnas.build): VGG layers are conv (with bias) + BN +
# LeakyReLU; downscaling is the block's stride-2 first conv; a skip is concatenated
# onto the predecessor's output, and an up cell's transposed conv (no bias) halves the
# channels of that concatenation.
def _cba(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=stride, padding=1),
                         nn.BatchNorm2d(cout), nn.LeakyReLU(0.01))


def _vgg(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(_cba(cin, cout, stride), _cba(cout, cout))


def _up(cin: int) -> nn.ConvTranspose2d:
    return nn.ConvTranspose2d(cin, cin // 2, 2, stride=2, bias=False)


class ReferenceUNet(nn.Module):
    """Depth 3: encoder 32-64-128-256, three blocks at the bottom, decoder 128-64-32."""

    def __init__(self, in_channels: int, n_classes: int) -> None:
        super().__init__()
        self.stem = _vgg(in_channels, 32)
        self.down = nn.ModuleList([_vgg(32, 64, 2), _vgg(64, 128, 2), _vgg(128, 256, 2)])
        self.bottom = nn.Sequential(_vgg(256, 256), _vgg(256, 256), _vgg(256, 256))
        self.up7 = nn.Sequential(_up(256), _vgg(128, 128))
        self.up8 = nn.Sequential(_up(256), _vgg(128, 64))    # 128 + 128 (skip)
        self.up9 = nn.Sequential(_up(128), _vgg(64, 32))     # 64 + 64 (skip)
        self.node10 = _vgg(64, 32)                           # 32 + 32 (skip)
        self.head = nn.Conv2d(32, n_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        encoder = [self.stem(x)]
        for block in self.down:
            encoder.append(block(encoder[-1]))
        x = self.up7(self.bottom(encoder[-1]))
        x = self.up8(torch.cat([x, encoder[2]], 1))
        x = self.up9(torch.cat([x, encoder[1]], 1))
        return self.head(self.node10(torch.cat([x, encoder[0]], 1)))


def test_unet_preset_matches_reference_unet():
    ours = build_model(preset("unet"), 3, 4)
    reference = ReferenceUNet(3, 4)
    assert count_parameters(ours) == count_parameters(reference)
    shape = (1, 3, 64, 64)
    assert count_macs(ours, shape) == count_macs(reference, shape)
    assert _forward(reference, 64, 3).shape == _forward(ours, 64, 3).shape


# -- the baselines of the paper ---------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "params_m", "mmac"), [("smp-unet", 18.4, 302), ("smp-resunet", 32.5, 166)]
)
def test_baselines_match_the_paper(name, params_m, mmac):
    model = build_model(Baseline(name), 1, 1)
    assert count_parameters(model) == pytest.approx(params_m * 1e6, rel=0.005)
    # The paper's MMAC were at 32x32; the FLOP counter skips BN/activations (<1.5% off).
    assert count_macs(model, (1, 1, 32, 32)) == pytest.approx(mmac * 1e6, rel=0.015)
    assert _forward(model, 32, 1).shape == (1, 1, 32, 32)


def test_architecture_dicts_dispatch_on_kind():
    baseline = Baseline("smp-resunet")
    assert architecture_from_dict(baseline.to_dict()) == baseline
    assert Baseline.from_dict(baseline.to_dict()).key == baseline.key != Baseline("smp-unet").key
    # the old spelling is the same network, with the same key: stored results still match
    assert Baseline("resunet") == baseline and baseline.to_dict()["name"] == "resunet"
    unet = preset("unet")
    assert architecture_from_dict(unet.to_dict()) == unet
    assert architecture_from_dict({"nodes": unet.to_dict()["nodes"]}) == unet
    with pytest.raises(GenotypeError, match="unknown architecture kind 'vit'"):
        architecture_from_dict({"kind": "vit"})
    with pytest.raises(GenotypeError,
                       match="unknown baseline 'vnet'; baselines: smp-unet, smp-resunet"):
        Baseline("vnet")


def test_a_3d_network_maps_a_volume_and_costs_count_it():
    # The same genotype built with spatial_dims=3: every layer 3D, a 5D input, and
    # costs measured on it. A deep sample of the paper's space mixes all four families.
    genotype = get_space("mbnas").sample(np.random.default_rng(3))
    assert {n.block for n in genotype.nodes} >= {"vgg", "residual", "dense", "inception"}
    model = build_model(genotype, 1, 2, base_channels=4, spatial_dims=3)
    assert not any(isinstance(m, nn.Conv2d | nn.BatchNorm2d | nn.ConvTranspose2d)
                   for m in model.modules())
    size = 2 ** genotype.depth() * 2
    x = torch.randn(2, 1, size, size + 2 ** genotype.depth(), size)
    out = model(x)
    assert out.shape == (2, 2, *x.shape[2:])
    out.logsumexp(1).mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    with pytest.raises(ConfigError, match=r"needs \(B, C, D, H, W\)"):
        model(torch.randn(1, 1, size, size))
    from mbnas.costs.measure import cost_report

    flat = cost_report(genotype, 16, memory=False)
    volume = cost_report(model, 16, memory=True, spatial_dims=3)
    assert volume.input_size == (16, 16, 16)
    assert count_macs(model, (1, 1, 16, 16, 16)) == volume.macs
    # A 3D kxkxk convolution holds k times the weights of the 2D kxk one at equal widths.
    flat_small = count_parameters(build_model(genotype, 1, 2, base_channels=4))
    assert flat_small < count_parameters(model) < 7 * flat_small
    assert volume.macs > 0 and volume.memory_bytes > 0 and flat.input_size == (16, 16)
    with pytest.raises(ConfigError, match="baseline 'smp-unet' is 2D only"):
        build_model(Baseline("unet"), 1, 2, spatial_dims=3)
