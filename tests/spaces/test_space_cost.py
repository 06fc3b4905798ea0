"""Cost figures: parameters, MACs, activation memory, and their formatting."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mbnas.costs.measure import (
    CostReport,
    cost_report,
    count_macs,
    count_parameters,
    format_macs,
    peak_activation_memory,
)
from mbnas.spaces.mbnas import Baseline, build_model, preset


def test_parameters_and_macs_of_single_layers():
    conv = nn.Conv2d(3, 8, 3, padding=1)
    assert count_parameters(conv) == 3 * 8 * 9 + 8
    assert count_macs(conv, (2, 3, 16, 16)) == 2 * 8 * 3 * 9 * 16 * 16
    up = nn.ConvTranspose2d(8, 4, 2, stride=2)
    assert count_macs(up, (1, 8, 5, 5)) == 8 * 4 * 4 * 5 * 5


def test_activation_memory_counts_saved_tensors_once():
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.ReLU())
    # conv saves its input, ReLU its output; the weight is a parameter, not counted.
    expected = (2 * 3 * 16 * 16 + 2 * 8 * 16 * 16) * 4
    assert peak_activation_memory(model, (2, 3, 16, 16)) == expected


def test_activation_memory_leaves_the_model_unchanged_and_scales_with_batch():
    model = build_model(preset("unet"), 1, 2).eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    one = peak_activation_memory(model, (2, 1, 32, 32))
    two = peak_activation_memory(model, (4, 1, 32, 32))
    assert not model.training
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert 1.9 < two / one < 2.1


def test_format_always_names_the_input_size():
    assert format_macs(644_000_000, (32, 32)) == "644 MMAC @ 32x32"
    assert format_macs(1_294_600_000, (32, 32)) == "1,295 MMAC @ 32x32"
    assert format_macs(2_500_000, (16, 16)) == "2.50 MMAC @ 16x16"
    report = CostReport(params=3_040_000, macs=644_000_000, input_size=(32, 32),
                        in_channels=1, n_classes=2, memory_bytes=3 * 2 ** 20)
    text = report.format()
    assert "3.04 M" in text and "644 MMAC @ 32x32" in text and "3.0 MiB per sample @ 32x32" in text


def test_cost_report_of_architectures():
    unet = preset("unet")
    model = build_model(unet, 1, 2)
    report = cost_report(unet, 32, in_channels=1, n_classes=2)
    assert report.params == count_parameters(model)
    assert report.macs == count_macs(model, (1, 1, 32, 32))
    assert report.input_size == (32, 32) and report.memory_bytes > 0
    big = cost_report(unet, (64, 32), in_channels=1, n_classes=2, memory=False)
    assert big.macs == pytest.approx(2 * report.macs, rel=1e-6)
    assert big.memory_bytes is None and "64x32" in big.format()
    assert cost_report(Baseline("resunet"), 32, memory=False).params > 30e6
