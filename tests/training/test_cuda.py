"""The CUDA paths: training, fused seeds and folds, a search and the device choice on a GPU.

Marked ``cuda``: they run where a CUDA device is present (``pytest -m cuda``, which
``benchmarks/device_check.sh`` runs first) and are skipped on a machine without one.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from mbnas.data.slices import SliceData
from mbnas.spaces.mbnas import get_space, preset
from mbnas.training.device import describe_device, select_device, use_bf16
from mbnas.training.fused import train_fused
from mbnas.training.protocol import Protocol
from mbnas.training.runs import RunContext, RunSpec, execute_run

pytestmark = pytest.mark.cuda


def _ctx(data: SliceData, device: str) -> RunContext:
    ids = data.case_ids
    return RunContext(data, (ids[:2], ids[2:]), device)


def test_auto_picks_the_gpu_and_trains_in_bf16(tiny_protocol: Protocol) -> None:
    device = select_device("auto")
    assert device.type == "cuda"
    assert use_bf16(tiny_protocol, device) == torch.cuda.is_bf16_supported()
    assert "cuda" in describe_device("auto", tiny_protocol)


def test_a_run_on_the_gpu_scores_like_the_cpu(phantom_slices: SliceData,
                                              tiny_protocol: Protocol) -> None:
    protocol = dataclasses.replace(tiny_protocol, precision="fp32", channels_last="off")
    g = preset("unet")
    spec = RunSpec(g.to_dict(), g.key, 0, 0, protocol)
    gpu = execute_run(spec, _ctx(phantom_slices, "cuda"))
    cpu = execute_run(spec, _ctx(phantom_slices, "cpu"))
    assert gpu.status == "finished" and gpu.device.startswith("cuda")
    assert [e["loss"] for e in gpu.curve] == pytest.approx([e["loss"] for e in cpu.curve],
                                                           abs=1e-3)


def test_a_bf16_run_on_the_gpu_finishes(phantom_slices: SliceData,
                                        tiny_protocol: Protocol) -> None:
    g = get_space("mbnas").sample(np.random.default_rng(5))
    record = execute_run(RunSpec(g.to_dict(), g.key, 1, 0, tiny_protocol),
                         _ctx(phantom_slices, "cuda"))
    assert record.status == "finished", record.error
    assert 0 <= record.score <= 1


def test_fused_seeds_and_folds_on_the_gpu_equal_separate_runs(phantom_slices: SliceData,
                                                              tiny_protocol: Protocol
                                                              ) -> None:
    protocol = dataclasses.replace(tiny_protocol, seeds=(0, 1), precision="fp32",
                                   channels_last="off")
    ctx = _ctx(phantom_slices, "cuda")
    g = preset("unet")
    specs = [RunSpec(g.to_dict(), g.key, f, s, protocol) for f, s in ((0, 0), (0, 1), (1, 0))]
    fused = train_fused(specs, ctx)
    for spec, outcome in zip(specs, fused, strict=True):
        alone = execute_run(spec, ctx)
        assert outcome.device.startswith("cuda")
        assert [e.loss for e in outcome.curve] == pytest.approx(
            [e["loss"] for e in alone.curve], abs=1e-3)


def test_a_search_on_the_gpu_with_fidelity_and_fusion(tmp_path: Path, phantom_spleen: Path,
                                                      phantom_cache: Path) -> None:
    from mbnas.cli import main

    out = tmp_path / "run"
    assert main(["search", str(phantom_spleen), "--out", str(out), "--protocol", "quick",
                 "--image-size", "32", "--budget", "3", "--epochs", "2", "--folds", "2",
                 "--cache", str(phantom_cache), "--device", "cuda", "--fuse",
                 "--fidelity", "0.5,1"]) == 0
    best = json.loads((out / "best.json").read_text())
    assert best["trainings_by_fidelity"]["1 (full)"] >= 2
