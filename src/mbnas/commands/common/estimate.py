"""`--estimate`: what a search or an evaluation will cost, before it starts.

A few training steps (and validation passes) of some networks are timed on the chosen
device with the protocol's batch size, image size and precision; the dataset's slice
count and the protocol's epochs, folds and seeds turn the rates into the time of one run,
one evaluation and the whole budget. Networks differ in cost, so the figures are a range
over the networks timed: the start network and two random networks of the space for a
search, every distinct network for an evaluation (the U-Net preset it adds included),
whose other steps (network costs, metrics on the original grid) are timed on one network
and one case and added. The slice count comes from the scans' headers: no preprocessing
pass (which at the paper's size takes minutes and gigabytes) and nothing written.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mbnas.data.formats import read_dataset
from mbnas.data.preprocess import count_slices
from mbnas.progress import track
from mbnas.spaces.mbnas import build_model
from mbnas.training.augment import augment_batch
from mbnas.training.device import select_device, to_channels_last, use_bf16
from mbnas.training.loss import soft_dice_loss
from mbnas.training.protocol import Protocol
from mbnas.training.train import predict_labels

TIMED_STEPS = 3


@dataclass(frozen=True)
class NetworkRate:
    """Measured speed of one network: training and validation images per second."""

    name: str
    train_images_per_s: float
    val_images_per_s: float

    def run_seconds(self, protocol: Protocol, n_train: float, n_val: float) -> float:
        per_epoch = n_train / self.train_images_per_s + n_val / self.val_images_per_s
        return protocol.epochs * per_epoch


@dataclass(frozen=True)
class DatasetSize:
    """What an estimate needs of a dataset, read from ``dataset.json`` and the headers."""

    n_slices: int
    n_cases: int
    in_channels: int
    n_classes: int


def dataset_size(data_dir: str | Path) -> DatasetSize:
    """The dataset's slice count (from the headers), cases, channels and classes."""
    dataset = read_dataset(data_dir)
    return DatasetSize(count_slices(dataset), len(dataset.cases), dataset.n_channels,
                       len(dataset.label_names))


@dataclass(frozen=True)
class Estimate:
    """The cost of ``n_evaluations`` evaluations of ``protocol`` on a dataset, and of
    the job's other steps (``steps``: (what, seconds), e.g. the network costs)."""

    protocol: Protocol
    n_slices: int
    n_evaluations: int
    rates: tuple[NetworkRate, ...]
    device: str
    steps: tuple[tuple[str, float], ...] = ()

    @property
    def runs_per_evaluation(self) -> int:
        return self.protocol.folds * len(self.protocol.seeds)

    def run_seconds(self) -> list[float]:
        folds = self.protocol.folds
        n_val = self.n_slices / folds
        return [r.run_seconds(self.protocol, self.n_slices - n_val, n_val) for r in self.rates]

    def total_hours(self) -> tuple[float, float]:
        runs = self.run_seconds()
        scale = self.runs_per_evaluation * self.n_evaluations / 3600
        other = sum(seconds for _, seconds in self.steps) / 3600
        return min(runs) * scale + other, max(runs) * scale + other

    def lines(self, what: str) -> list[str]:
        runs = self.run_seconds()
        n_eval = self.runs_per_evaluation
        lo, hi = self.total_hours()
        out = [f"estimate on {self.device}: {self.n_slices} slices at "
               f"{self.protocol.image_size}x{self.protocol.image_size}, "
               f"{self.protocol.epochs} epochs, {self.protocol.folds} folds x "
               f"{len(self.protocol.seeds)} seeds = {n_eval} runs per evaluation"]
        for rate, seconds in zip(self.rates, runs, strict=True):
            out.append(f"  {rate.name:<28} {rate.train_images_per_s:9.1f} images/s training, "
                       f"{_duration(seconds)} per run, {_duration(seconds * n_eval)} per "
                       "evaluation")
        for step, seconds in self.steps:
            out.append(f"  {step}: {_duration(seconds)}")
        out.append(f"{what}: {self.n_evaluations} evaluation(s)"
                   + (f" and {len(self.steps)} other step(s)" if self.steps else "") + ", "
                   f"{_duration(lo * 3600)} to {_duration(hi * 3600)} "
                   "(one run at a time; the range is over the networks timed)")
        return out


def supernet_lines(est: Estimate, space: Any, budget: int, retrain_top: int,
                   max_kernel: int | None = None) -> list[str]:
    """The cost of the same search with ``--scoring supernet``, beside the plain one.

    A supernet step trains one path, so a supernet epoch costs about a network's epoch
    (the mean of the networks timed); scoring a network is a forward pass over
    :data:`~mbnas.scoring.supernet_train.RECALIBRATION_BATCHES` training batches and the
    validation slices per fold. Training-epoch equivalents: the supernets' epochs plus
    the retrained networks' runs, against ``budget`` evaluations' runs.
    """
    from mbnas.scoring.supernet import SuperNet
    from mbnas.scoring.supernet_train import RECALIBRATION_BATCHES, supernet_epochs

    p = est.protocol
    folds, seeds = p.folds, len(p.seeds)
    n_val = est.n_slices / folds
    n_train = est.n_slices - n_val
    train_rate = float(np.mean([r.train_images_per_s for r in est.rates]))
    val_rate = float(np.mean([r.val_images_per_s for r in est.rates]))
    s_epochs = supernet_epochs(p)
    train_s = folds * s_epochs * n_train / train_rate
    score_s = budget * folds * (RECALIBRATION_BATCHES * p.batch_size + n_val) / val_rate
    top = min(retrain_top, budget)
    retrain_s = top * folds * seeds * float(np.mean(est.run_seconds()))
    plain_s = budget * folds * seeds * float(np.mean(est.run_seconds()))
    plain_eq = budget * folds * seeds * p.epochs
    super_eq = folds * s_epochs + top * folds * seeds * p.epochs
    with torch.device("meta"):  # counted, not allocated
        net = SuperNet(space, 1, 2, p.base_channels, max_kernel)
    params = sum(t.numel() for t in net.parameters())
    gib = params * 16 / 2 ** 30  # fp32 weights, gradients and Adam's two moments
    return [
        f"with --scoring supernet: {folds} supernet(s) x {s_epochs} epochs "
        f"({_duration(train_s)}), {budget} networks scored with inherited weights "
        f"({_duration(score_s)}), the best {top} retrained stand-alone "
        f"({_duration(retrain_s)}): {_duration(train_s + score_s + retrain_s)} in all, "
        f"against {_duration(plain_s)} for the plain search (mean of the networks timed)",
        f"  training-epoch equivalents: {super_eq} against {plain_eq} "
        f"(1/{plain_eq / max(super_eq, 1):.1f})",
        f"  supernet of the {space.name} space at {p.base_channels} base channels: "
        f"{params / 1e6:.1f} M parameters, {gib:.1f} GiB for weights, gradients and Adam "
        "(activations: one path, as one network's)",
    ]


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.1f} min"
    if seconds < 3 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def time_network(name: str, architecture: Any, in_channels: int, n_classes: int,
                 protocol: Protocol, device: str, steps: int = TIMED_STEPS,
                 validate: bool = True) -> NetworkRate:
    """Time ``steps`` training steps and one validation pass after one warm-up each.

    Without ``validate`` the validation rate is not measured (reported as infinite).
    """
    dev = select_device(device)
    bf16 = use_bf16(protocol, dev)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = build_model(architecture, in_channels, n_classes,
                            protocol.base_channels).to(dev)
    channels_last = protocol.channels_last != "off"
    if channels_last:
        model = to_channels_last(model, dev)
    gen = torch.Generator(device=dev).manual_seed(0)
    size, bs = protocol.image_size, protocol.batch_size
    images = torch.randn(bs, in_channels, size, size, generator=gen, device=dev)
    labels = torch.randint(0, n_classes, (bs, size, size), generator=gen, device=dev)

    def batch() -> tuple[torch.Tensor, torch.Tensor]:
        x, y = augment_batch(images, labels, protocol.augment, gen)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x, y

    train_s = seconds_per_step(model, batch, protocol, dev, bf16, steps)
    if not validate:
        return NetworkRate(name, bs / train_s, float("inf"))
    # one training batch of images validated (a full validation batch at the paper's
    # size would cost more time than the estimate is worth; the rate is per image)
    val_s = seconds_per_call(
        lambda: predict_labels(model, images, protocol.val_batch_size, bf16), 1, dev)
    return NetworkRate(name, bs / train_s, len(images) / val_s)


def seconds_per_step(model: torch.nn.Module,
                     batch: Callable[[], tuple[torch.Tensor, torch.Tensor]],
                     protocol: Protocol, device: torch.device, bf16: bool,
                     steps: int) -> float:
    """Seconds per training step (Adam, the soft Dice loss) on ``batch()``'s images,
    after one warm-up step: what a 2D and a 3D estimate time alike."""
    optimiser = torch.optim.Adam(model.parameters(), lr=protocol.lr)
    autocast = torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=bf16)

    def step() -> None:
        x, y = batch()
        with autocast:
            loss = soft_dice_loss(model(x), y)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()

    model.train()
    return seconds_per_call(step, steps, device)


def seconds_per_call(fn: Any, repeats: int, device: torch.device) -> float:
    """Seconds per call of ``fn`` after one warm-up call."""
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return (time.perf_counter() - t0) / repeats


def estimate(data: DatasetSize, named_architectures: Sequence[tuple[str, Any]],
             protocol: Protocol, device: str, n_evaluations: int,
             steps: int = TIMED_STEPS) -> Estimate:
    """Time each network and scale to ``n_evaluations`` evaluations of ``protocol``."""
    with track(f"timing {len(named_architectures)} network(s) for the estimate",
               total=len(named_architectures), unit="network") as step:
        rates = tuple(time_network(name, arch, data.in_channels, data.n_classes, protocol,
                                   device, steps)
                      for name, arch in step.each(named_architectures, lambda n: n[0]))
    dev = select_device(device)
    return Estimate(protocol, data.n_slices, n_evaluations, rates, str(dev))


def search_networks(space_name: str, start: str, max_depth: int, seed: int
                    ) -> list[tuple[str, Any]]:
    """The start network of a search and two random networks of its space."""
    from mbnas.spaces.mbnas import get_space, preset
    from mbnas.spaces.registry import RANDOM_START

    space = get_space(space_name, max_depth)
    rng = np.random.default_rng(seed)
    first = ("start (random)", space.sample(rng)) if start == RANDOM_START else (
        f"start ({start})", preset(start))
    return [first] + [(f"random network {i + 1}", space.sample(rng)) for i in range(2)]


__all__ = ["DatasetSize", "Estimate", "NetworkRate", "dataset_size", "estimate",
           "search_networks", "supernet_lines", "time_network"]
