"""One 3D training run: patches from memory-mapped volumes, whole-case sliding-window validation.

The counterpart of :func:`mbnas.training.train.train_run` for ``Protocol.volume``: the
same loss (:func:`~mbnas.training.loss.soft_dice_loss`), optimiser (Adam), schedule
(:func:`~mbnas.training.loss.poly_lr`), failure rule and run score (the mean validation
Dice over the last ``score_fraction`` of epochs). What differs is the data: an epoch is
``volume.iterations_per_epoch`` steps on batches of patches (``mbnas.data.patches``,
foreground-oversampled), augmented on the device (``augment3d.py``), and each validation
case is predicted whole with MONAI's Gaussian-weighted ``sliding_window_inference``, its
Dice computed per case (``mbnas.metrics.overlap``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from mbnas.data.patches import sample_patches
from mbnas.data.volumes import VolumeData
from mbnas.metrics.overlap import dice_counts, validation_dice
from mbnas.training.augment3d import augment_volumes
from mbnas.training.device import select_device, use_bf16
from mbnas.training.loss import set_poly_lr, soft_dice_loss
from mbnas.training.protocol import Protocol
from mbnas.training.train import EpochStats, RunOutcome, _autocast, constant_class

EpochCallback = Callable[[EpochStats], None]


@torch.no_grad()
def sliding_window_logits(model: Callable[[torch.Tensor], torch.Tensor], image: torch.Tensor,
                          patch: Sequence[int], overlap: float, bf16: bool = False,
                          batch_size: int = 4) -> torch.Tensor:
    """Outputs (1, K, X, Y, Z) of a whole volume (1, C, X, Y, Z), Gaussian-weighted windows.

    ``model`` is a network in eval mode, or any callable (an ensemble's mean softmax). A
    volume smaller than the patch is padded by MONAI and cropped back.
    """
    from monai.inferers import sliding_window_inference

    with _autocast(image.device, bf16):
        out = sliding_window_inference(image, tuple(int(p) for p in patch), batch_size, model,
                                       overlap=overlap, mode="gaussian")
    # MONAI returns what the predictor returns (a tensor here; its hint allows tuples, dicts).
    assert isinstance(out, torch.Tensor)
    return out.float()


def predict_volume(model: nn.Module, image: np.ndarray, protocol: Protocol,
                   device: torch.device, bf16: bool = False) -> torch.Tensor:
    """Argmax labels (X, Y, Z) of a preprocessed (C, X, Y, Z) volume, on ``device``."""
    assert protocol.volume is not None
    x = torch.from_numpy(np.array(image, dtype=np.float32))[None].to(device)
    model.eval()
    logits = sliding_window_logits(model, x, protocol.volume.patch_size,
                                   protocol.volume.overlap, bf16, protocol.batch_size)
    return logits[0].argmax(0)


def _validate(model: nn.Module, val: VolumeData, protocol: Protocol, device: torch.device,
              bf16: bool) -> tuple[torch.Tensor, torch.Tensor, int | None]:
    """The fold's score, per-case per-class Dice, and the class predicted everywhere
    (None unless every case's prediction is one class)."""
    counts, constant = [], set()
    for case in val.cases:
        pred = predict_volume(model, val.image(case.case_id), protocol, device, bf16)
        ref = torch.from_numpy(np.asarray(val.label(case.case_id), dtype=np.int64)).to(device)
        counts.append(dice_counts(pred[None], ref[None], val.n_classes))
        constant.add(constant_class(pred))
    c = torch.cat(counts)
    score, per_case = validation_dice(c, torch.arange(len(val.cases)), len(val.cases),
                                      protocol.dice)
    only = constant.pop() if len(constant) == 1 else None
    return score, per_case, only


def volume_metrics(model: nn.Module, val: VolumeData, protocol: Protocol,
                   device: torch.device, bf16: bool = False) -> dict[str, Any]:
    """Every registered metric of every validation case on the training grid, by case id
    (what ``final_metrics`` keeps for 2D slices, measured on whole volumes)."""
    from mbnas.metrics import case_metrics

    out: dict[str, Any] = {}
    for case in val.cases:
        pred = predict_volume(model, val.image(case.case_id), protocol, device, bf16)
        out[case.case_id] = case_metrics(pred.cpu().numpy(), np.asarray(val.label(case.case_id)),
                                         val.n_classes, case.spacing,
                                         tolerance_mm=protocol.surface_tolerance_mm).to_dict()
    return out


def train_run_3d(model: nn.Module, train: VolumeData, val: VolumeData, protocol: Protocol,
                 seed: int, device: torch.device | str = "auto",
                 on_epoch: EpochCallback | None = None) -> RunOutcome:
    """Train ``model`` on patches of ``train``; score it on the whole ``val`` cases each epoch.

    Args:
        model: A freshly initialised 3D network (seeded by the caller).
        train: Training volumes of the fold.
        val: Validation volumes of the fold.
        protocol: A protocol with a planned ``volume``.
        seed: Seeds the patch sampling and the augmentation.
        device: "auto", "cpu", "cuda" or a torch.device.
        on_epoch: Called with each epoch's statistics.
    """
    vol = protocol.volume
    if vol is None or not vol.planned:
        raise ValueError("train_run_3d needs a protocol with a planned volume")
    device = select_device(device) if isinstance(device, str) else device
    bf16 = use_bf16(protocol, device)
    model = model.to(device)
    rng = np.random.default_rng(seed)
    aug_gen = torch.Generator(device=device).manual_seed(seed + 1)
    optimiser = torch.optim.Adam(model.parameters(), lr=protocol.lr,
                                 weight_decay=protocol.weight_decay)
    curve: list[EpochStats] = []
    started = time.perf_counter()
    per_case = torch.zeros(0)
    only: int | None = None
    for epoch in range(protocol.epochs):
        t0 = time.perf_counter()
        lr = set_poly_lr(optimiser, protocol.lr, epoch, protocol.epochs,
                         protocol.poly_exponent)
        model.train()
        total = torch.zeros((), device=device)
        for _ in range(vol.iterations_per_epoch):
            images, labels = sample_patches(train, vol.patch_size, protocol.batch_size,
                                            vol.foreground_oversampling, rng)
            x = torch.from_numpy(images).to(device)
            y = torch.from_numpy(labels.astype(np.int64)).to(device)
            x, y = augment_volumes(x, y, protocol.augment, vol, aug_gen)
            with _autocast(device, bf16):
                loss = soft_dice_loss(model(x), y, protocol.loss_smooth)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            total += loss.detach()
        if not torch.isfinite(total):
            from mbnas.training.failures import NonFiniteLossError

            raise NonFiniteLossError(f"the training loss became non-finite ({float(total)}) "
                                     f"in epoch {epoch}")
        score, per_case, only = _validate(model, val, protocol, device, bf16)
        stats = EpochStats(epoch=epoch, loss=float(total) / vol.iterations_per_epoch,
                           val_dice=float(score), lr=lr, seconds=time.perf_counter() - t0)
        curve.append(stats)
        if on_epoch is not None:
            on_epoch(stats)
    last = curve[-protocol.score_epochs:]
    outcome = RunOutcome(
        score=float(np.mean([s.val_dice for s in last])), curve=curve,
        case_dice={c.case_id: d for c, d in zip(val.cases,
                                                per_case.mean(dim=1).float().tolist())},
        seconds=time.perf_counter() - started, device=str(device),
        precision="bf16" if bf16 else "fp32", constant_class=only)
    if protocol.final_metrics:
        outcome.metrics = volume_metrics(model, val, protocol, device, bf16)
    if protocol.keep_weights:
        outcome.state_dict = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    return outcome
