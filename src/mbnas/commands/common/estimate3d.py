"""`--estimate` of a 3D search: timed patch steps and sliding-window validation passes.

As the 2D estimate (:mod:`mbnas.commands.common.estimate`): the start network and two
random networks of the space are timed on the chosen device, a few training steps on
random patches of the planned size (the plan of :mod:`mbnas.data.planning`, made from
the dataset's headers only) and one Gaussian sliding-window pass over a volume of the
dataset's median shape; a run is ``epochs x (iterations x step + validation cases x
pass)``. Nothing is written and nothing else is trained.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from mbnas.commands.common.estimate import (
    NetworkRate,
    _duration,
    seconds_per_call,
    seconds_per_step,
)
from mbnas.data.formats import read_dataset
from mbnas.data.planning import format_strides, median_geometry
from mbnas.spaces.mbnas import build_model
from mbnas.training.augment3d import augment_volumes
from mbnas.training.device import select_device, use_bf16
from mbnas.training.protocol import Protocol
from mbnas.training.train3d import sliding_window_logits


@dataclass(frozen=True)
class Estimate3D:
    """The cost of ``n_evaluations`` evaluations of a planned 3D ``protocol``.

    ``rates`` hold, per network, training patches per second and validation volumes
    (of the median shape) per second.
    """

    protocol: Protocol
    n_cases: int
    median_shape: tuple[int, ...]
    n_evaluations: int
    rates: tuple[NetworkRate, ...]
    device: str

    @property
    def runs_per_evaluation(self) -> int:
        return self.protocol.folds * len(self.protocol.seeds)

    def run_seconds(self) -> list[float]:
        vol = self.protocol.volume
        assert vol is not None
        patches = vol.iterations_per_epoch * self.protocol.batch_size
        n_val = self.n_cases / self.protocol.folds
        return [r.run_seconds(self.protocol, patches, n_val) for r in self.rates]

    def total_hours(self) -> tuple[float, float]:
        runs = self.run_seconds()
        scale = self.runs_per_evaluation * self.n_evaluations / 3600
        return min(runs) * scale, max(runs) * scale

    def lines(self, what: str) -> list[str]:
        vol = self.protocol.volume
        assert vol is not None
        runs, n_eval = self.run_seconds(), self.runs_per_evaluation
        lo, hi = self.total_hours()
        out = [f"estimate on {self.device}: 3D, {self.n_cases} volumes (median "
               f"{'x'.join(map(str, self.median_shape))} voxels at "
               f"{'x'.join(f'{s:g}' for s in vol.spacing)} mm), patch "
               f"{'x'.join(map(str, vol.patch_size))}, strides {format_strides(vol.strides)}, "
               f"{vol.iterations_per_epoch} steps of {self.protocol.batch_size} per epoch, "
               f"{self.protocol.epochs} epochs, {self.protocol.folds} folds x "
               f"{len(self.protocol.seeds)} seeds = {n_eval} runs per evaluation"]
        for rate, seconds in zip(self.rates, runs, strict=True):
            out.append(f"  {rate.name:<28} {rate.train_images_per_s:9.1f} patches/s training, "
                       f"{_duration(seconds)} per run, {_duration(seconds * n_eval)} per "
                       "evaluation")
        out.append(f"{what}: {self.n_evaluations} evaluation(s), "
                   f"{_duration(lo * 3600)} to {_duration(hi * 3600)} "
                   "(one run at a time; the range is over the networks timed)")
        return out


def time_network_3d(name: str, architecture: Any, in_channels: int, n_classes: int,
                    protocol: Protocol, shape: tuple[int, ...], device: str,
                    steps: int = 3) -> NetworkRate:
    """Time ``steps`` training steps on patches and one sliding-window pass over ``shape``."""
    vol = protocol.volume
    assert vol is not None and vol.planned
    dev = select_device(device)
    bf16 = use_bf16(protocol, dev)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = build_model(architecture, in_channels, n_classes, protocol.base_channels,
                            spatial_dims=3, strides=vol.strides).to(dev)
    gen = torch.Generator(device=dev).manual_seed(0)
    bs = protocol.batch_size
    images = torch.randn(bs, in_channels, *vol.patch_size, generator=gen, device=dev)
    labels = torch.randint(0, n_classes, (bs, *vol.patch_size), generator=gen, device=dev)
    train_s = seconds_per_step(
        model, lambda: augment_volumes(images, labels, protocol.augment, vol, gen),
        protocol, dev, bf16, steps)
    volume = torch.randn(1, in_channels, *shape, generator=gen, device=dev)
    model.eval()
    val_s = seconds_per_call(lambda: sliding_window_logits(
        model, volume, vol.patch_size, vol.overlap, bf16, bs), 1, dev)
    return NetworkRate(name, bs / train_s, 1 / val_s)


def estimate_3d(data_dir: str, networks: list[tuple[str, Any]], protocol: Protocol,
                device: str, n_evaluations: int, steps: int = 3) -> Estimate3D:
    """Time each network on a planned 3D ``protocol`` and scale to the search."""
    vol = protocol.volume
    assert vol is not None
    dataset = read_dataset(data_dir)
    _, shape = median_geometry([c.images[0] for c in dataset.cases], vol.spacing)
    median = tuple(max(1, int(round(s))) for s in shape)
    n_classes, in_channels = len(dataset.label_names), dataset.n_channels
    rates = tuple(time_network_3d(n, a, in_channels, n_classes, protocol, median, device,
                                  steps) for n, a in networks)
    return Estimate3D(protocol, len(dataset.cases), median, n_evaluations, rates,
                      str(select_device(device)))


__all__ = ["Estimate3D", "estimate_3d", "time_network_3d"]
