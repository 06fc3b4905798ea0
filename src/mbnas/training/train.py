"""One training run: an architecture trained on one fold with one seed, scored per epoch.

The whole 2D training set is moved to the device once; batches are index gathers and
the augmentation is batched (``augment.py``), so the loop has no per-sample Python work.
An epoch is as many whole passes over the training slices as ``samples_per_epoch``
asks. After each epoch the validation slices are predicted and the validation Dice is
computed from their TP/FP/FN counts as the protocol's ``dice`` says (pooled over the
fold, or per case in 3D; ``mbnas.metrics.overlap``); the run's score is the mean
validation Dice over the last ``score_fraction`` of epochs (paper, section 2.3).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from mbnas.data.slices import SliceData
from mbnas.metrics.overlap import dice_counts, validation_dice
from mbnas.training.augment import augment_batch
from mbnas.training.device import select_device, to_channels_last, use_bf16
from mbnas.training.intensity import intensity_augment
from mbnas.training.loss import set_poly_lr, soft_dice_loss
from mbnas.training.protocol import Protocol
from mbnas.training.sampling import epoch_batches, foreground_slices
from mbnas.training.score_rule import run_score


@dataclass
class EpochStats:
    epoch: int
    loss: float
    val_dice: float
    lr: float
    seconds: float


@dataclass
class RunOutcome:
    """What one training run produced."""

    score: float
    curve: list[EpochStats]
    case_dice: dict[str, float]
    seconds: float
    device: str
    precision: str
    metrics: dict[str, Any] | None = None
    state_dict: dict[str, torch.Tensor] | None = field(default=None, repr=False)
    #: The one class the last epoch predicted on every validation pixel, else None: a
    #: network stuck at a constant mask, whose score says nothing about its architecture.
    constant_class: int | None = None


EpochCallback = Callable[[EpochStats], None]


def constant_class(pred: torch.Tensor) -> int | None:
    """The class of a prediction that is one class on every pixel, else None."""
    if pred.numel() == 0:
        return None
    first = pred.reshape(-1)[0]
    return int(first) if bool((pred == first).all()) else None


def _autocast(device: torch.device, bf16: bool):
    if not bf16:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


class _DeviceData:
    """Slices as tensors on the training device, plus per-case bookkeeping."""

    def __init__(self, data: SliceData, device: torch.device, channels_last: bool) -> None:
        self.images = torch.from_numpy(np.ascontiguousarray(data.images)).to(device)
        if channels_last:
            self.images = self.images.contiguous(memory_format=torch.channels_last)
        self.labels = torch.from_numpy(data.labels.astype(np.int64)).to(device)
        self.case_index = torch.from_numpy(data.case_index.astype(np.int64)).to(device)
        self.n_cases = len(data.cases)
        self.n_classes = data.n_classes


@torch.no_grad()
def predict_labels(
    model: nn.Module, images: torch.Tensor, batch_size: int, bf16: bool
) -> torch.Tensor:
    """Argmax class of every pixel, (N, H, W) int64, on the images' device."""
    model.eval()
    out = []
    for start in range(0, len(images), batch_size):
        with _autocast(images.device, bf16):
            logits = model(images[start:start + batch_size])
        out.append(logits.argmax(1))
    return torch.cat(out)


def _train_step(model: nn.Module, optimiser: torch.optim.Optimizer, tr: _DeviceData,
                idx: torch.Tensor, protocol: Protocol, aug_gen: torch.Generator,
                channels_last: bool, device: torch.device, bf16: bool) -> torch.Tensor:
    """One optimiser step on the slices ``idx``; the loss, still on the device."""
    x, y = augment_batch(tr.images[idx], tr.labels[idx], protocol.augment, aug_gen)
    x = intensity_augment(x, protocol.intensity, aug_gen)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    with _autocast(device, bf16):
        loss = soft_dice_loss(model(x), y, protocol.loss_smooth)
    optimiser.zero_grad(set_to_none=True)
    loss.backward()
    optimiser.step()
    return loss.detach()


def train_run(
    model: nn.Module,
    train: SliceData,
    val: SliceData,
    protocol: Protocol,
    seed: int,
    device: torch.device | str = "auto",
    on_epoch: EpochCallback | None = None,
) -> RunOutcome:
    """Train ``model`` on ``train`` and score it on ``val`` after every epoch.

    Args:
        model: A freshly initialised network (its initialisation is the caller's, seeded).
        train: Training slices of the fold.
        val: Validation slices of the fold (whole cases).
        protocol: The training protocol.
        seed: Seeds the batch order and the augmentation (the model was seeded by the caller).
        device: "auto", "cpu", "cuda" or a torch.device.
        on_epoch: Called with each epoch's statistics (progress display).
    """
    device = select_device(device) if isinstance(device, str) else device
    bf16 = use_bf16(protocol, device)
    channels_last = protocol.channels_last != "off"
    model = model.to(device)
    if channels_last:
        model = to_channels_last(model, device)
    tr = _DeviceData(train, device, channels_last)
    va = _DeviceData(val, device, channels_last)
    order_gen = torch.Generator().manual_seed(seed)
    aug_gen = torch.Generator(device=device).manual_seed(seed + 1)
    optimiser = torch.optim.Adam(model.parameters(), lr=protocol.lr,
                                 weight_decay=protocol.weight_decay)
    foreground = foreground_slices(tr.labels)
    curve: list[EpochStats] = []
    started = time.perf_counter()
    per_case = torch.zeros(0)
    for epoch in range(protocol.epochs):
        t0 = time.perf_counter()
        lr = set_poly_lr(optimiser, protocol.lr, epoch, protocol.epochs,
                         protocol.poly_exponent)
        model.train()
        total, steps = torch.zeros((), device=device), 0
        for idx in epoch_batches(len(tr.images), protocol, foreground, order_gen, device):
            total += _train_step(model, optimiser, tr, idx, protocol, aug_gen,
                                 channels_last, device, bf16)
            steps += 1
        if not torch.isfinite(total):  # a diverged network: a failed run, not a score 0
            from mbnas.training.failures import NonFiniteLossError

            raise NonFiniteLossError(f"the training loss became non-finite ({float(total)}) "
                                     f"in epoch {epoch}")
        pred = predict_labels(model, va.images, protocol.val_batch_size, bf16)
        counts = dice_counts(pred, va.labels, va.n_classes)
        dice, per_case = validation_dice(counts, va.case_index, va.n_cases, protocol.dice)
        stats = EpochStats(
            epoch=epoch,
            loss=float(total) / max(steps, 1),
            val_dice=float(dice),
            lr=lr,
            seconds=time.perf_counter() - t0,
        )
        curve.append(stats)
        if on_epoch is not None:
            on_epoch(stats)
    score = run_score([s.val_dice for s in curve], protocol.score_fraction)
    case_mean = per_case.mean(dim=1).float().tolist()
    outcome = RunOutcome(
        score=score,
        curve=curve,
        case_dice={c.case_id: d for c, d in zip(val.cases, case_mean)},
        seconds=time.perf_counter() - started,
        device=str(device),
        precision="bf16" if bf16 else "fp32",
        constant_class=constant_class(pred),
    )
    if protocol.final_metrics:
        from mbnas.training.final_metrics import validation_metrics

        pred_np = predict_labels(model, va.images, protocol.val_batch_size, bf16).cpu().numpy()
        outcome.metrics = validation_metrics(pred_np, val, protocol.surface_tolerance_mm)
    if protocol.keep_weights:
        outcome.state_dict = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    return outcome
