"""Cost figures of a trained network for Table 1 and the reporting card.

Parameters, MACs and activation memory are those of :func:`mbnas.spaces.mbnas.cost_report`
(the one counter); this module adds the inference latency and builds the network the
way every cost figure is measured (:func:`cost_model`).

* parameters;
* MACs of one forward pass (batch 1) at the training size, and at 32x32 (the input size
  of the paper's MMAC column, see :mod:`mbnas.costs.measure`), both true counts; and at
  32x32 in the paper's convention (thop 0.0.31, :func:`mbnas.spaces.mbnas.count_macs_paper`),
  for the paper-comparable table;
* inference latency: milliseconds per slice at the training size, batch 1, fp32, the
  median of several timed forward passes after warm-up, on the device given;
* peak (activation) memory: the activations a training forward pass keeps for the
  backward pass, per slice at the training size (deterministic, device-independent; see
  :func:`mbnas.spaces.mbnas.peak_activation_memory`).
"""

from __future__ import annotations

import dataclasses
import json
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from mbnas.costs.measure import cost_report, count_macs_paper
from mbnas.io import atomic_write_json
from mbnas.progress import track
from mbnas.reporting.report_data import ModelCost
from mbnas.spaces.mbnas import architecture_from_dict, build_model
from mbnas.training.device import device_label, select_device

#: Timed forward passes per latency figure (after ``_WARMUP`` untimed ones).
LATENCY_REPEATS = 10
_WARMUP = 3


def cost_model(architecture: Any, in_channels: int, n_classes: int,
               base_channels: int, **build: Any) -> torch.nn.Module:
    """The network cost figures are measured on: fresh weights from seed 0 (figures do not
    depend on the weights; the seed keeps the global random state untouched)."""
    arch = architecture_from_dict(dict(architecture)) if isinstance(architecture, dict) \
        else architecture
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return build_model(arch, in_channels, n_classes, base_channels, **build)


@torch.no_grad()
def latency_ms(model: torch.nn.Module, shape: tuple[int, ...], device: torch.device,
               repeats: int = LATENCY_REPEATS) -> float:
    """Median forward-pass time in milliseconds of ``model`` (eval mode) on ``device``."""
    model = model.to(device).eval()
    x = torch.zeros(shape, device=device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for _ in range(_WARMUP):
        model(x)
    sync()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        model(x)
        sync()
        times.append((time.perf_counter() - t0) * 1e3)
    return float(statistics.median(times))


def paper_macs(model: torch.nn.Module, in_channels: int) -> float:
    """MACs at 32x32 in the paper's convention (thop 0.0.31, the paper's Table 1)."""
    return float(count_macs_paper(model, (1, in_channels, 32, 32)))


def measure_cost(architecture: dict[str, Any], in_channels: int, n_classes: int,
                 base_channels: int, image_size: int, device: str = "auto") -> ModelCost:
    """Every cost figure of one network (fresh weights: cost does not depend on them).

    Args:
        architecture: A genotype or baseline dict.
        in_channels: Input channels of the dataset.
        n_classes: Classes, background included.
        base_channels: Stem width of a searched network (the protocol's).
        image_size: The training size: MACs, latency and memory are measured there.
        device: Where latency is measured ("auto": CUDA when present).
    """
    model = cost_model(architecture, in_channels, n_classes, base_channels)
    shape = (1, in_channels, image_size, image_size)
    # memory: per sample, measured at batch 2 (BatchNorm cannot train on one 1x1 sample)
    cost = cost_report(model, image_size, in_channels, n_classes)
    dev = select_device(device)
    macs = float(cost.macs)
    macs_32 = macs if image_size == 32 else float(
        cost_report(model, 32, in_channels, n_classes, memory=False).macs)
    return ModelCost(
        macs_paper=paper_macs(model, in_channels),
        params=cost.params,
        macs=macs,
        macs_input_size=(image_size, image_size),
        macs_32=macs_32,
        latency_ms=latency_ms(model, shape, dev),
        peak_memory_mb=float(cost.memory_bytes or 0) / 2 ** 20,
        device=device_label(dev),
    )


def measure_cost_3d(architecture: dict[str, Any], in_channels: int, n_classes: int,
                    base_channels: int, volume: Any, device: str = "auto") -> ModelCost:
    """The cost figures of a 3D network at its training patch (``volume``: the protocol's
    planned ``VolumeConfig``): parameters, MACs, latency and training memory per patch.
    The 32x32 figures of the paper's 2D table do not apply (None)."""
    patch = tuple(volume.patch_size)
    model = cost_model(architecture, in_channels, n_classes, base_channels, spatial_dims=3,
                       strides=tuple(volume.strides))
    cost = cost_report(model, patch, in_channels, n_classes, spatial_dims=3)
    dev = select_device(device)
    return ModelCost(params=cost.params, macs=float(cost.macs), macs_input_size=patch,
                     latency_ms=latency_ms(model, (1, in_channels, *patch), dev),
                     peak_memory_mb=float(cost.memory_bytes or 0) / 2 ** 20,
                     device=device_label(dev))


def measure_costs(architectures: Sequence[dict[str, Any]], in_channels: int, n_classes: int,
                  base_channels: int, image_size: int, device: str = "auto",
                  cache: Path | None = None, volume: Any = None) -> dict[str, ModelCost]:
    """Cost figures of several networks, keyed by architecture key.

    With ``cache`` (a JSON file), figures measured before for the same network, sizes
    and device are read back instead of measured again, so a resumed evaluation does
    not rebuild every network, and its latency figures stay those first reported.
    """
    known: dict[str, Any] = {}
    if cache is not None and cache.is_file():
        try:
            known = json.loads(cache.read_text())
        except (OSError, ValueError):
            known = {}
    where = device_label(select_device(device))
    out: dict[str, ModelCost] = {}
    with track("network costs", total=len(architectures), unit="network") as step:
        keyed = [(architecture_from_dict(dict(a)).key, a) for a in architectures]
        for key, architecture in step.each(keyed, lambda item: item[0]):
            ident = f"{key}/{in_channels}/{n_classes}/{base_channels}/{image_size}/{where}"
            if volume is not None:  # 3D: at the patch, with the planned strides
                ident += f"/3d/{volume.patch_size}/{volume.strides}"
            if key in out:
                continue
            if ident in known:
                out[key] = ModelCost.from_dict(known[ident])
                if out[key].macs_paper is None and volume is None:  # cached before the paper count
                    model = cost_model(architecture, in_channels, n_classes, base_channels)
                    out[key] = dataclasses.replace(out[key],
                                                   macs_paper=paper_macs(model, in_channels))
                    known[ident] = out[key].to_dict()
                continue
            out[key] = (measure_cost(architecture, in_channels, n_classes, base_channels,
                                     image_size, device) if volume is None else
                        measure_cost_3d(architecture, in_channels, n_classes, base_channels,
                                        volume, device))
            known[ident] = out[key].to_dict()
    if cache is not None:
        atomic_write_json(cache, known)
    return out
