"""Fused training: the seeds of one architecture on one fold, trained as one network.

The runs of one fold share their training and validation slices, so their networks can
be stacked "horizontally" (HFTA, MLSys 2021): the members' parameters and buffers are
stacked along a new leading dimension (``torch.func.stack_module_state``) and one
``torch.func.vmap`` over ``functional_call`` runs all members in one pass; a
convolution with stacked weights becomes one grouped convolution. The mechanism knows
nothing of the block internals, so it works for every block family and any norm layer
(BatchNorm's running statistics are stacked buffers too, updated per member).

Each member gets exactly the updates it would get alone:
- its own initialisation (the network built under its seed),
- its own batch order and augmentation (its own generators, seeded as in ``train_run``),
- its own normalisation statistics (per-member buffers, per-member batches),
- its own Adam state: Adam is elementwise, so one Adam over the stacked parameters is
  M independent Adams, and the summed loss gives each member the gradient of its own.

So fused and separate training agree within floating-point tolerance (a grouped
convolution sums in another order), not bit for bit; ``tests/engine/test_engine_fused.py``
compares them. Runs are fused only when they share architecture, fold and protocol;
channels-last is not used inside the fused pass. A group that cannot be fused (a
network with an operation ``vmap`` does not support) falls back to separate runs.
"""

from __future__ import annotations

import copy
import time
import traceback
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from mbnas.engine.augment import augment_batch
from mbnas.engine.device import select_device, use_bf16
from mbnas.engine.failures import NonFiniteLossError
from mbnas.engine.intensity import intensity_augment
from mbnas.engine.loss import poly_lr, soft_dice_loss
from mbnas.engine.runs import (
    RunContext,
    RunSpec,
    execute_run,
    fold_data,
    record_outcome,
    utc_now,
)
from mbnas.engine.train import EpochStats, RunOutcome, _autocast, _DeviceData, constant_class
from mbnas.metrics.overlap import dice_counts, validation_dice
from mbnas.space import architecture_from_dict, build_model
from mbnas.store import RunRecord

OnEpoch = Callable[[RunSpec, EpochStats], None]


def fusable_groups(specs: Sequence[RunSpec]) -> list[list[RunSpec]]:
    """Runs grouped by (architecture, fold, protocol), in order of first appearance."""
    groups: dict[tuple[str, int, str], list[RunSpec]] = {}
    for spec in specs:
        groups.setdefault((spec.arch_key, spec.fold, spec.protocol.key), []).append(spec)
    return list(groups.values())


class FusedNetworks:
    """M networks of one architecture as stacked parameters and buffers."""

    def __init__(self, models: Sequence[nn.Module]) -> None:
        params, buffers = stack_module_state(list(models))
        self.params = {k: v.detach().requires_grad_(True) for k, v in params.items()}
        self.buffers = buffers
        self.members = len(models)
        self.names = list(models[0].state_dict().keys())
        self.base = copy.deepcopy(models[0]).to("meta")

        def one(p: dict[str, torch.Tensor], b: dict[str, torch.Tensor],
                x: torch.Tensor) -> torch.Tensor:
            return functional_call(self.base, (p, b), (x,))

        self._per_member = vmap(one, in_dims=(0, 0, 0))
        self._shared_input = vmap(one, in_dims=(0, 0, None))

    def __call__(self, x: torch.Tensor, shared: bool = False) -> torch.Tensor:
        """Logits (M, B, K, H, W) for inputs (M, B, C, H, W), or (B, C, H, W) if shared."""
        fn = self._shared_input if shared else self._per_member
        return fn(self.params, self.buffers, x)

    def train(self, mode: bool = True) -> None:
        self.base.train(mode)

    @torch.no_grad()
    def predict(self, images: torch.Tensor, batch_size: int, bf16: bool) -> torch.Tensor:
        """Argmax class of every pixel for every member, (M, N, H, W)."""
        self.train(False)
        out = []
        for start in range(0, len(images), batch_size):
            with _autocast(images.device, bf16):
                logits = self(images[start:start + batch_size], shared=True)
            out.append(logits.argmax(2))
        return torch.cat(out, dim=1)

    def state_dict(self, member: int) -> dict[str, torch.Tensor]:
        both = {**self.params, **self.buffers}
        return {k: both[k][member].detach().cpu().clone() for k in self.names}


def train_fused(specs: Sequence[RunSpec], ctx: RunContext,
                on_epoch: OnEpoch | None = None) -> list[RunOutcome]:
    """Train runs of one architecture, fold and protocol together; one outcome per spec."""
    first = specs[0]
    if any((s.arch_key, s.fold, s.protocol.key) != (first.arch_key, first.fold,
                                                     first.protocol.key) for s in specs):
        raise ValueError("fused runs must share architecture, fold and protocol")
    protocol, device = first.protocol, select_device(ctx.device)
    bf16 = use_bf16(protocol, device)
    train, val = fold_data(ctx.data, ctx.folds, first.fold)
    models = []
    for spec in specs:  # each member initialised exactly as execute_run does
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(spec.seed)
            models.append(build_model(architecture_from_dict(spec.architecture),
                                      ctx.data.in_channels, ctx.data.n_classes,
                                      protocol.base_channels).to(device))
    nets = FusedNetworks(models)
    del models
    tr, va = _DeviceData(train, device, False), _DeviceData(val, device, False)
    order_gens = [torch.Generator().manual_seed(s.seed) for s in specs]
    aug_gens = [torch.Generator(device=device).manual_seed(s.seed + 1) for s in specs]
    optimiser = torch.optim.Adam(list(nets.params.values()), lr=protocol.lr,
                                 weight_decay=protocol.weight_decay)
    n, bs, m = len(tr.images), protocol.batch_size, len(specs)
    passes = protocol.passes_per_epoch(n)
    curves: list[list[EpochStats]] = [[] for _ in specs]
    started = time.perf_counter()
    per_case = torch.zeros(m, 0)
    for epoch in range(protocol.epochs):
        t0 = time.perf_counter()
        lr = poly_lr(protocol.lr, epoch, protocol.epochs, protocol.poly_exponent)
        for group in optimiser.param_groups:
            group["lr"] = lr
        nets.train(True)
        totals, steps = torch.zeros(m, device=device), 0
        for _ in range(passes):  # as train_run: whole passes, each member its own order
            orders = [torch.randperm(n, generator=g).to(device) for g in order_gens]
            for start in range(0, n, bs):
                if len(orders[0][start:start + bs]) < 2 and n >= 2:  # as train_run
                    continue
                totals += _fused_step(nets, optimiser, tr, orders, start, protocol, aug_gens,
                                      device, bf16)
                steps += 1
        if not bool(torch.isfinite(totals).all()):
            raise NonFiniteLossError(f"the training loss became non-finite "
                                     f"({totals.tolist()}) in epoch {epoch}")
        pred = nets.predict(va.images, protocol.val_batch_size, bf16)
        scored = [validation_dice(dice_counts(p, va.labels, va.n_classes), va.case_index,
                                  va.n_cases, protocol.dice) for p in pred]
        per_case = torch.stack([c for _, c in scored])
        seconds = (time.perf_counter() - t0) / m
        mean_loss = (totals / max(steps, 1)).tolist()
        for i, spec in enumerate(specs):
            stats = EpochStats(epoch=epoch, loss=float(mean_loss[i]),
                               val_dice=float(scored[i][0]), lr=lr, seconds=seconds)
            curves[i].append(stats)
            if on_epoch is not None:
                on_epoch(spec, stats)
    final_pred = None
    if protocol.final_metrics:
        final_pred = nets.predict(va.images, protocol.val_batch_size, bf16).cpu().numpy()
    outcomes = []
    for i in range(m):
        last = curves[i][-protocol.score_epochs:]
        outcome = RunOutcome(
            score=float(np.mean([s.val_dice for s in last])), curve=curves[i],
            case_dice={c.case_id: d for c, d in zip(val.cases, per_case[i].mean(dim=1).tolist())},
            seconds=(time.perf_counter() - started) / m, device=str(device),
            precision="bf16" if bf16 else "fp32", constant_class=constant_class(pred[i]),
        )
        if final_pred is not None:
            from mbnas.engine.final_metrics import validation_metrics

            outcome.metrics = validation_metrics(final_pred[i], val,
                                                 protocol.surface_tolerance_mm)
        if protocol.keep_weights:
            outcome.state_dict = nets.state_dict(i)
        outcomes.append(outcome)
    return outcomes


def _fused_step(nets: FusedNetworks, optimiser: torch.optim.Optimizer, tr: _DeviceData,
                orders: Sequence[torch.Tensor], start: int, protocol: Any,
                aug_gens: Sequence[torch.Generator], device: torch.device,
                bf16: bool) -> torch.Tensor:
    """One optimiser step of every member on its own batch (as ``train._train_step``)."""
    bs = protocol.batch_size
    xs, ys = [], []
    for order, gen in zip(orders, aug_gens, strict=True):
        idx = order[start:start + bs]
        x, y = augment_batch(tr.images[idx], tr.labels[idx], protocol.augment, gen)
        xs.append(intensity_augment(x, protocol.intensity, gen))
        ys.append(y)
    x, y = torch.stack(xs), torch.stack(ys)
    with _autocast(device, bf16):
        logits = nets(x)
    losses = torch.stack([soft_dice_loss(logits[i], y[i], protocol.loss_smooth)
                          for i in range(len(xs))])
    optimiser.zero_grad(set_to_none=True)
    losses.sum().backward()
    optimiser.step()
    return losses.detach()


def execute_group(specs: Sequence[RunSpec], ctx: RunContext,
                  on_epoch: OnEpoch | None = None) -> list[RunRecord]:
    """Records of a group of runs: fused when it has several members, else one run.

    A group whose fused training raises is trained again run by run, so an operation
    ``vmap`` cannot batch costs time, never a result; a network that fails alone still
    gives failed records.
    """
    if len(specs) == 1:
        cb = None if on_epoch is None else (lambda st, s=specs[0]: on_epoch(s, st))
        return [execute_run(specs[0], ctx, cb)]
    started, t0 = utc_now(), time.perf_counter()
    try:
        outcomes = train_fused(specs, ctx, on_epoch)
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception:  # noqa: BLE001 - fall back to separate runs
        reason = traceback.format_exc().strip().splitlines()[-1]
        print(f"fused training of {specs[0].arch_key} fold {specs[0].fold} failed "
              f"({reason}); training its runs one by one")
        return [execute_run(s, ctx, None if on_epoch is None else
                            (lambda st, s=s: on_epoch(s, st))) for s in specs]
    seconds = (time.perf_counter() - t0) / len(specs)
    return [_with_fused_note(record_outcome(s, ctx, o, started, seconds), len(specs))
            for s, o in zip(specs, outcomes, strict=True)]


def _with_fused_note(record: RunRecord, members: int) -> RunRecord:
    """Say in the record's metrics that the run was trained fused with others."""
    import dataclasses

    metrics: dict[str, Any] = dict(record.metrics)
    metrics["fused_members"] = members
    return dataclasses.replace(record, metrics=metrics)


__all__ = ["FusedNetworks", "execute_group", "fusable_groups", "train_fused"]
