"""Training a supernet (one per fold), its checkpoints, and scoring a genotype with it.

**Training** is single-path uniform sampling (SPOS): every optimiser step draws one
genotype from the space's own uniform sampler (:meth:`SearchSpace.sample`) and trains its
path on one batch, with the search protocol's data, augmentation, loss and schedule (the
step of :mod:`mbnas.training.train`; Adam, poly decay over ``supernet_epochs``). An
epoch is the protocol's epoch (``samples_per_epoch``). After every epoch the supernet,
the optimiser and every random state (batch order, augmentation, the genotype sampler)
are written atomically to its checkpoint, so a training killed at any moment resumes
from its last epoch to the same weights as an uninterrupted one.

**Scoring** a genotype on a fold: the BatchNorm statistics of its path are recalibrated
on :data:`RECALIBRATION_BATCHES` fixed batches of the fold's training slices (no
augmentation), then the validation slices are predicted and scored by the protocol's
validation Dice (pooled over the fold by default), as a stand-alone run's epoch is.

Files: ``<run folder>/supernet/<key>/fold<F>.pt``, ``<key>`` a hash of the protocol key,
``supernet_epochs``, the space and the seed (:func:`supernet_key`), so a supernet is
never mixed with one trained under other settings.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mbnas.data.slices import SliceData
from mbnas.io import atomic_write
from mbnas.metrics.overlap import dice_counts, validation_dice
from mbnas.nn.weight_init import initialise
from mbnas.scoring.supernet import SuperNet
from mbnas.spaces.mbnas.definitions import SearchSpace
from mbnas.spaces.mbnas.genotype import Genotype
from mbnas.training.device import use_bf16
from mbnas.training.loss import set_poly_lr
from mbnas.training.protocol import Protocol
from mbnas.training.sampling import epoch_batches, foreground_slices
from mbnas.training.train import _DeviceData, _train_step, predict_labels

#: Training batches the BatchNorm statistics of a scored path are recalibrated on.
RECALIBRATION_BATCHES = 8
CHECKPOINT_VERSION = 1
log = logging.getLogger("mbnas.training")


def supernet_epochs(protocol: Protocol) -> int:
    """The supernet's epochs: ``supernet_epochs``, or ``epochs`` when that is 0."""
    return protocol.supernet_epochs or protocol.epochs


def supernet_key(protocol: Protocol, space: SearchSpace, seed: int, max_kernel: int) -> str:
    """A hash of everything that changes a supernet's weights."""
    blob = json.dumps({"protocol": protocol.key, "epochs": supernet_epochs(protocol),
                       "space": space.summary(), "seed": seed, "max_kernel": max_kernel,
                       "version": CHECKPOINT_VERSION}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


@dataclass
class SupernetTraining:
    """A fold's supernet and how long it trained (epochs done, seconds, loss per epoch)."""

    net: SuperNet
    epochs: int
    seconds: float
    losses: list[float] = field(default_factory=list)


def _save(path: Path, state: dict[str, Any]) -> None:
    atomic_write(path, lambda f: torch.save(state, f))


def train_supernet(space: SearchSpace, train: SliceData, protocol: Protocol, seed: int,
                   device: torch.device, path: Path, max_kernel: int | None = None
                   ) -> SupernetTraining:
    """Train (or resume, or load) the supernet of one fold; see the module docstring.

    Args:
        space: The space whose genotypes are sampled.
        train: The fold's training slices.
        protocol: The search protocol (data, augmentation, loss, schedule).
        seed: Seeds the initialisation, batch order, augmentation and genotype draws.
        device: Where to train.
        path: The checkpoint file (read if present, rewritten after every epoch).
        max_kernel: See :class:`SuperNet`.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = SuperNet(space, train.in_channels, train.n_classes, protocol.base_channels,
                       max_kernel)
        initialise(net, protocol.init)  # in place
    net.to(device)  # in place: net stays typed as the SuperNet it is
    optimiser = torch.optim.Adam(net.parameters(), lr=protocol.lr,
                                 weight_decay=protocol.weight_decay)
    order_gen = torch.Generator().manual_seed(seed)
    aug_gen = torch.Generator(device=device).manual_seed(seed + 1)
    rng = np.random.default_rng(seed)
    total_epochs = supernet_epochs(protocol)
    done, seconds, losses = 0, 0.0, []
    if path.exists():
        state = torch.load(path, map_location=device, weights_only=False)
        net.load_state_dict(state["model"])
        optimiser.load_state_dict(state["optimiser"])
        order_gen.set_state(state["order_gen"])
        aug_gen.set_state(state["aug_gen"].to(aug_gen.get_state().device))
        rng.bit_generator.state = state["rng"]
        done, seconds, losses = state["epoch"], state["seconds"], state["losses"]
    bf16 = use_bf16(protocol, device)
    tr = _DeviceData(train, device, False)
    foreground = foreground_slices(tr.labels)
    for epoch in range(done, total_epochs):
        t0 = time.perf_counter()
        set_poly_lr(optimiser, protocol.lr, epoch, total_epochs, protocol.poly_exponent)
        net.train()
        total, steps = torch.zeros((), device=device), 0
        for idx in epoch_batches(len(tr.images), protocol, foreground, order_gen, device):
            path_net = net.subnet(space.sample(rng))  # one path per step (SPOS)
            total += _train_step(path_net, optimiser, tr, idx, protocol, aug_gen,
                                 False, device, bf16)
            steps += 1
        seconds += time.perf_counter() - t0
        losses.append(float(total) / max(steps, 1))
        log.info("supernet %s epoch %d/%d: loss %.4f, %d paths in %.1f s", path.name,
                 epoch + 1, total_epochs, losses[-1], steps, time.perf_counter() - t0)
        _save(path, {"version": CHECKPOINT_VERSION, "epoch": epoch + 1,
                     "model": net.state_dict(), "optimiser": optimiser.state_dict(),
                     "order_gen": order_gen.get_state(), "aug_gen": aug_gen.get_state(),
                     "rng": rng.bit_generator.state, "seconds": seconds, "losses": losses})
    net.eval()
    return SupernetTraining(net, total_epochs, seconds, losses)


def recalibration_batches(train: SliceData, protocol: Protocol, device: torch.device,
                          n_batches: int = RECALIBRATION_BATCHES) -> list[torch.Tensor]:
    """Fixed training batches (a seeded order, no augmentation) for BN recalibration."""
    order = torch.randperm(len(train.images), generator=torch.Generator().manual_seed(0))
    bs = max(2, protocol.batch_size)
    images = torch.from_numpy(np.ascontiguousarray(train.images))
    batches = [images[order[s:s + bs]].to(device) for s in range(0, len(order), bs)]
    return [b for b in batches if len(b) >= 2][:n_batches] or batches[:1]


@torch.no_grad()
def inherited_score(net: SuperNet, genotype: Genotype, batches: list[torch.Tensor],
                    val: SliceData, protocol: Protocol, device: torch.device,
                    val_data: Any = None) -> float:
    """The validation Dice of ``genotype`` with inherited weights, BN recalibrated.

    ``val_data``: the validation slices already on the device (``_DeviceData``), to
    reuse between genotypes.
    """
    bf16 = use_bf16(protocol, device)
    net.recalibrate_bn(genotype, batches)
    va = val_data if val_data is not None else _DeviceData(val, device, False)
    pred = predict_labels(net.subnet(genotype), va.images, protocol.val_batch_size, bf16)
    counts = dice_counts(pred, va.labels, va.n_classes)
    value, _ = validation_dice(counts, va.case_index, va.n_cases, protocol.dice)
    score = float(value)
    return score if math.isfinite(score) else math.nan


__all__ = ["RECALIBRATION_BATCHES", "SupernetTraining", "inherited_score",
           "recalibration_batches", "supernet_epochs", "supernet_key", "train_supernet"]
