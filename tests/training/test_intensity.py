"""Intensity augmentation for robustness: off by default and free, on: seeded and batched."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from mbnas.errors import ConfigError
from mbnas.training.intensity import ROBUST, IntensityConfig, intensity_augment
from mbnas.training.protocol import Protocol, get_protocol

ALL = IntensityConfig(gamma_probability=1, contrast_probability=1, bias_probability=1,
                      noise_probability=1, blur_probability=1)


def test_off_returns_the_batch_and_draws_nothing() -> None:
    x = torch.randn(4, 2, 16, 16)
    gen = torch.Generator().manual_seed(3)
    assert intensity_augment(x, IntensityConfig(), gen) is x
    assert torch.equal(torch.rand(3, generator=gen),
                       torch.rand(3, generator=torch.Generator().manual_seed(3)))


def test_on_is_seeded_per_sample_and_finite() -> None:
    x = torch.randn(6, 2, 16, 16)
    a = intensity_augment(x, ALL, torch.Generator().manual_seed(0))
    b = intensity_augment(x, ALL, torch.Generator().manual_seed(0))
    c = intensity_augment(x, ALL, torch.Generator().manual_seed(1))
    assert a.shape == x.shape and torch.isfinite(a).all()
    assert torch.equal(a, b) and not torch.equal(a, c)
    # each sample gets its own draw: no two samples change by the same amount
    change = (a - x).abs().mean(dim=(1, 2, 3))
    assert len(set(change.tolist())) == 6


@pytest.mark.parametrize("name", ["gamma", "contrast", "bias", "noise", "blur"])
def test_each_transform_changes_the_image(name: str) -> None:
    x = torch.randn(3, 1, 16, 16)
    cfg = IntensityConfig(**{f"{name}_probability": 1.0})
    assert not torch.allclose(intensity_augment(x, cfg, torch.Generator().manual_seed(0)), x)


def test_protocol_setting_is_off_in_presets_and_keyed_only_when_on() -> None:
    paper = get_protocol("paper")
    assert not paper.intensity.enabled and not get_protocol("quick").intensity.enabled
    robust = dataclasses.replace(paper, intensity=ROBUST)
    assert robust.key != paper.key
    assert Protocol.from_dict(robust.to_dict()) == robust
    with pytest.raises(ConfigError, match="unknown intensity settings: gama"):
        Protocol.from_dict({**paper.to_dict(), "intensity": {"gama": 1}})
    with pytest.raises(ConfigError, match="noise_probability must be in"):
        IntensityConfig(noise_probability=2.0)
