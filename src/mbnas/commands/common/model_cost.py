"""Cost figures of a trained network for Table 1 and the reporting card.

Every figure is measured by its registered :class:`~mbnas.costs.registry.CostFigure`
(:data:`~mbnas.costs.registry.COSTS`); this module builds the network the way every cost
figure is measured (:func:`cost_model`) and fills the evaluation's :class:`ModelCost`.

* parameters;
* MACs of one forward pass (batch 1) at the training size, and at 32x32 (the input size
  of the paper's MMAC column, see :mod:`mbnas.costs.measure`), both true counts; and at
  32x32 in the paper's convention (thop 0.0.31, :func:`mbnas.spaces.mbnas.count_macs_paper`),
  for the paper-comparable table;
* inference latency: milliseconds per slice at the training size, batch 1, fp32, the
  median of several timed forward passes after warm-up, on the device given, with the
  run's CPU threads (the figure's device says how many; a figure measured with other
  threads is measured again, not read back);
* peak (activation) memory: the activations a training forward pass keeps for the
  backward pass, per slice at the training size (deterministic, device-independent; see
  :func:`mbnas.spaces.mbnas.peak_activation_memory`).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from mbnas.costs.measure import cost_report, cpu_threads, latency_ms
from mbnas.costs.registry import COSTS
from mbnas.io import atomic_write_json
from mbnas.progress import track
from mbnas.reporting.report_data import ModelCost
from mbnas.spaces.mbnas import architecture_from_dict, build_model
from mbnas.training.device import device_label, select_device


def cost_model(architecture: Any, in_channels: int, n_classes: int,
               base_channels: int, **build: Any) -> torch.nn.Module:
    """The network cost figures are measured on: fresh weights from seed 0 (figures do not
    depend on the weights; the seed keeps the global random state untouched)."""
    arch = architecture_from_dict(dict(architecture)) if isinstance(architecture, dict) \
        else architecture
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return build_model(arch, in_channels, n_classes, base_channels, **build)


#: The registered figures :class:`ModelCost` has a field of its own for; any other (a
#: plugin's) is measured into ``ModelCost.more``.
MODEL_COST_FIELDS = ("params", "macs", "macs_paper", "memory", "latency")


def more_figures(model: torch.nn.Module, shape: tuple[int, ...], device: torch.device,
                 have: Mapping[str, float] | None = None) -> dict[str, float]:
    """Every registered figure without a field of :class:`ModelCost`, measured (those in
    ``have`` kept)."""
    out = dict(have or {})
    for name in COSTS.names():
        if name not in MODEL_COST_FIELDS and name not in out:
            out[name] = float(COSTS.get(name).measure(model, shape, device))
    return out


def paper_macs(model: torch.nn.Module, in_channels: int) -> float:
    """MACs at 32x32 in the paper's convention (thop 0.0.31, the paper's Table 1)."""
    return COSTS.get("macs_paper").measure(model, (1, in_channels, 32, 32), None)


def measure_cost(architecture: dict[str, Any], in_channels: int, n_classes: int,
                 base_channels: int, image_size: int, device: str = "auto",
                 threads: int | None = None) -> ModelCost:
    """Every cost figure of one network (fresh weights: cost does not depend on them).

    Args:
        architecture: A genotype or baseline dict.
        in_channels: Input channels of the dataset.
        n_classes: Classes, background included.
        base_channels: Stem width of a searched network (the protocol's).
        image_size: The training size: MACs, latency and memory are measured there.
        device: Where latency is measured ("auto": CUDA when present).
        threads: CPU threads of the latency measurement (None: torch's current number).
    """
    model = cost_model(architecture, in_channels, n_classes, base_channels)
    shape = (1, in_channels, image_size, image_size)
    dev = select_device(device)

    def figure(name: str, at: tuple[int, ...] = shape) -> float:
        return COSTS.get(name).measure(model, at, dev)

    macs = figure("macs")
    with cpu_threads(threads):  # the run's threads, not whatever torch had last
        latency = figure("latency")
    return ModelCost(
        macs_paper=paper_macs(model, in_channels),
        params=int(figure("params")),
        macs=macs,
        macs_input_size=(image_size, image_size),
        macs_32=macs if image_size == 32 else figure("macs", (1, in_channels, 32, 32)),
        latency_ms=latency,
        peak_memory_mb=figure("memory") / 2 ** 20,
        device=_where(dev, threads),
        more=more_figures(model, shape, dev),
    )


def _where(dev: torch.device, threads: int | None) -> str:
    """The device of a latency figure, with its CPU threads (``..., 1 CPU thread(s)``)."""
    n = threads if threads is not None else torch.get_num_threads()
    return f"{device_label(dev)}, {n} CPU thread(s)"


def measure_cost_3d(architecture: dict[str, Any], in_channels: int, n_classes: int,
                    base_channels: int, volume: Any, device: str = "auto",
                    threads: int | None = None) -> ModelCost:
    """The cost figures of a 3D network at its training patch (``volume``: the protocol's
    planned ``VolumeConfig``): parameters, MACs, latency and training memory per patch.
    The 32x32 figures of the paper's 2D table do not apply (None)."""
    patch = tuple(volume.patch_size)
    model = cost_model(architecture, in_channels, n_classes, base_channels, spatial_dims=3,
                       strides=tuple(volume.strides))
    cost = cost_report(model, patch, in_channels, n_classes, spatial_dims=3)
    dev = select_device(device)
    with cpu_threads(threads):
        latency = latency_ms(model, (1, in_channels, *patch), dev)
    return ModelCost(params=cost.params, macs=float(cost.macs), macs_input_size=patch,
                     latency_ms=latency,
                     peak_memory_mb=float(cost.memory_bytes or 0) / 2 ** 20,
                     device=_where(dev, threads))


def measure_costs(architectures: Sequence[dict[str, Any]], in_channels: int, n_classes: int,
                  base_channels: int, image_size: int, device: str = "auto",
                  cache: Path | None = None, threads: int | None = None,
                  volume: Any = None) -> dict[str, ModelCost]:
    """Cost figures of several networks, keyed by architecture key.

    With ``cache`` (a JSON file), figures measured before for the same network, sizes
    device and CPU threads are read back instead of measured again, so a resumed
    evaluation does not rebuild every network; other threads measure again.
    """
    known: dict[str, Any] = {}
    if cache is not None and cache.is_file():
        try:
            known = json.loads(cache.read_text())
        except (OSError, ValueError):
            known = {}
    where = _where(select_device(device), threads)
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
                missing = [n for n in COSTS.names()
                           if n not in MODEL_COST_FIELDS and n not in out[key].more]
                # cached before the paper count or a plugin figure existed (2D only)
                if volume is None and (out[key].macs_paper is None or missing):
                    model = cost_model(architecture, in_channels, n_classes, base_channels)
                    shape = (1, in_channels, image_size, image_size)
                    out[key] = dataclasses.replace(
                        out[key], macs_paper=out[key].macs_paper or paper_macs(model, in_channels),
                        more=more_figures(model, shape, select_device(device), out[key].more))
                    known[ident] = out[key].to_dict()
                continue
            out[key] = (measure_cost(architecture, in_channels, n_classes, base_channels,
                                     image_size, device, threads) if volume is None else
                        measure_cost_3d(architecture, in_channels, n_classes, base_channels,
                                        volume, device, threads))
            known[ident] = out[key].to_dict()
    if cache is not None:
        atomic_write_json(cache, known)
    return out
