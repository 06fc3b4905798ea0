"""Fused training: the runs (seeds, and folds) of one architecture, trained as one network.

The runs of one architecture share its shape, so their networks can
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

With runs of several folds (``fusable_groups(..., folds=True)``) each member also has
its own training slices (indices into one copy of the data) and its own validation
fold; where the folds' training sets differ in size, a step in which members' batches
differ is split by batch size and only the members of each part are updated.

So fused and separate training agree within floating-point tolerance (a grouped
convolution sums in another order), not bit for bit; ``tests/training/test_engine_fused.py``
compares them (folds: in float64). Runs are fused only when they share architecture and
protocol; channels-last is not used inside the fused pass. A group that cannot be fused (a
network with an operation ``vmap`` does not support) falls back to separate runs.
"""

from __future__ import annotations

import copy
import functools
import time
import traceback
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from mbnas.data.slices import SliceData
from mbnas.errors import HookError
from mbnas.metrics.overlap import dice_counts, validation_dice
from mbnas.nn.weight_init import initialise
from mbnas.spaces.mbnas import architecture_from_dict, build_model
from mbnas.store import RunRecord
from mbnas.training.augment import augment_batch
from mbnas.training.device import select_device, use_bf16
from mbnas.training.failures import NonFiniteLossError
from mbnas.training.intensity import intensity_augment
from mbnas.training.loss import poly_lr, set_poly_lr, soft_dice_loss
from mbnas.training.runs import (
    RunContext,
    RunSpec,
    execute_run,
    fold_data,
    record_outcome,
    utc_now,
)
from mbnas.training.sampling import epoch_batches, foreground_slices
from mbnas.training.score_rule import run_score
from mbnas.training.stacked_adam import StackedAdam
from mbnas.training.train import EpochStats, RunOutcome, _autocast, _DeviceData, constant_class

OnEpoch = Callable[[RunSpec, EpochStats], None]


def fusable_groups(specs: Sequence[RunSpec], folds: bool = False) -> list[list[RunSpec]]:
    """Runs grouped by (architecture, fold, protocol), in order of first appearance; with
    ``folds`` by (architecture, protocol): all folds and seeds of an architecture."""
    groups: dict[tuple[str, int, str], list[RunSpec]] = {}
    for spec in specs:
        fold = -1 if folds else spec.fold
        groups.setdefault((spec.arch_key, fold, spec.protocol.key), []).append(spec)
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

    def call_members(self, members: Sequence[int], x: torch.Tensor) -> torch.Tensor:
        """Logits of some members only, for their inputs (len(members), B, C, H, W).

        The members' parameters are gathered (their gradients flow back into the
        stacked tensors) and their updated BatchNorm statistics written back.
        """
        if list(members) == list(range(self.members)):
            return self(x)
        idx = torch.tensor(list(members), device=x.device)
        params = {k: v.index_select(0, idx) for k, v in self.params.items()}
        buffers = {k: v.index_select(0, idx) for k, v in self.buffers.items()}
        out = self._per_member(params, buffers, x)
        with torch.no_grad():
            for k, v in buffers.items():
                self.buffers[k].index_copy_(0, idx, v)
        return out

    def train(self, mode: bool = True) -> None:
        self.base.train(mode)

    @torch.no_grad()
    def predict_member(self, member: int, images: torch.Tensor, batch_size: int,
                       bf16: bool) -> torch.Tensor:
        """Argmax class of every pixel for one member on its own images, (N, H, W)."""
        self.train(False)
        params = {k: v[member] for k, v in self.params.items()}
        buffers = {k: v[member] for k, v in self.buffers.items()}
        out = []
        for start in range(0, len(images), batch_size):
            with _autocast(images.device, bf16):
                logits = functional_call(self.base, (params, buffers),
                                         (images[start:start + batch_size],))
            out.append(logits.argmax(1))
        return torch.cat(out)

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


class _Member:
    """One member's data: indices of its fold's training slices into all slices, and its
    fold's validation slices (as ``fold_data`` gives them to a separate run)."""

    def __init__(self, data: SliceData, folds: Sequence[Sequence[str]], fold: int,
                 device: torch.device) -> None:
        held_out = set(folds[fold])
        ranges = [data.case_slices(c) for c in data.case_ids if c not in held_out]
        train = np.concatenate([np.arange(r.start, r.stop) for r in ranges]) if ranges \
            else np.zeros(0, dtype=np.int64)
        self.train = torch.from_numpy(train.astype(np.int64)).to(device)
        # Positions (in this member's training set) of slices with foreground, as
        # train_run finds them in its own training data.
        self.foreground = foreground_slices(torch.as_tensor(data.labels[train]))
        self.val_data = fold_data(data, folds, fold)[1]
        self.val = _DeviceData(self.val_data, device, False)

    def batches(self, protocol: Any, gen: torch.Generator) -> list[torch.Tensor]:
        """One epoch's batches (indices into all slices), in ``train_run``'s order."""
        return [self.train[idx] for idx in epoch_batches(
            len(self.train), protocol, self.foreground, gen, self.train.device)]


def train_fused(specs: Sequence[RunSpec], ctx: RunContext,
                on_epoch: OnEpoch | None = None) -> list[RunOutcome]:
    """Train runs of one architecture and protocol together; one outcome per spec.

    The runs may be of several folds: each member then steps through its own training
    slices (indices into one copy of the data on the device) and is validated on its
    own fold. In a step where members' batches differ in size (or some have none left),
    each size is a pass of its own and only those members are updated
    (:class:`~mbnas.training.stacked_adam.StackedAdam`). Float64 slices train float64
    networks (for exact comparisons).
    """
    first = specs[0]
    if any((s.arch_key, s.protocol.key) != (first.arch_key, first.protocol.key)
           for s in specs):
        raise ValueError("fused runs must share architecture and protocol")
    slices = ctx.data
    if not isinstance(slices, SliceData):  # the search refuses --fuse for a 3D space
        raise TypeError("fused training takes 2D slices, not volumes")
    protocol, device = first.protocol, select_device(ctx.device)
    bf16 = use_bf16(protocol, device)
    dtype = torch.float64 if slices.images.dtype == np.float64 else torch.float32
    models = []
    for spec in specs:  # each member initialised exactly as execute_run does
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(spec.seed)
            models.append(initialise(build_model(architecture_from_dict(spec.architecture),
                                                 slices.in_channels, slices.n_classes,
                                                 protocol.base_channels),
                                     protocol.init).to(device, dtype))
    nets = FusedNetworks(models)
    del models
    data = _DeviceData(slices, device, False)  # every slice once; members index it
    members = [_Member(slices, ctx.folds, s.fold, device) for s in specs]
    one_fold = len({s.fold for s in specs}) == 1
    order_gens = [torch.Generator().manual_seed(s.seed) for s in specs]
    aug_gens = [torch.Generator(device=device).manual_seed(s.seed + 1) for s in specs]
    m = len(specs)
    # Equal training sets: every step is all members at one size, and one Adam over the
    # stacked parameters is m independent Adams.
    optimiser: Any = (torch.optim.Adam(list(nets.params.values()), lr=protocol.lr,
                                       weight_decay=protocol.weight_decay)
                      if len({len(x.train) for x in members}) == 1 else
                      StackedAdam(nets.params, m, protocol.lr, protocol.weight_decay))
    curves: list[list[EpochStats]] = [[] for _ in specs]
    started = time.perf_counter()
    per_case: list[torch.Tensor] = [torch.zeros(0)] * m
    for epoch in range(protocol.epochs):
        t0 = time.perf_counter()
        lr = poly_lr(protocol.lr, epoch, protocol.epochs, protocol.poly_exponent)
        if isinstance(optimiser, StackedAdam):
            optimiser.lr = lr
        else:
            set_poly_lr(optimiser, protocol.lr, epoch, protocol.epochs, protocol.poly_exponent)
        nets.train(True)
        # Per member as train_run sums it (a float32 scalar), so the curves match.
        totals, steps = [torch.zeros((), device=device) for _ in specs], [0] * m
        batches = [x.batches(protocol, g) for x, g in zip(members, order_gens, strict=True)]
        for t in range(max(len(b) for b in batches)):
            by_size: dict[int, list[int]] = {}
            for i, b in enumerate(batches):
                if t < len(b):
                    by_size.setdefault(len(b[t]), []).append(i)
            for group in by_size.values():
                losses = _fused_step(nets, optimiser, data, group,
                                     [batches[i][t] for i in group], protocol,
                                     [aug_gens[i] for i in group], device, bf16)
                for i, loss in zip(group, losses, strict=True):
                    totals[i] += loss
                    steps[i] += 1
        if not all(bool(torch.isfinite(t)) for t in totals):
            raise NonFiniteLossError(f"the training loss became non-finite "
                                     f"({[float(t) for t in totals]}) in epoch {epoch}")
        if one_fold:
            va = members[0].val
            preds = list(nets.predict(va.images, protocol.val_batch_size, bf16))
        else:
            preds = [nets.predict_member(i, x.val.images, protocol.val_batch_size, bf16)
                     for i, x in enumerate(members)]
        seconds = (time.perf_counter() - t0) / m
        for i, spec in enumerate(specs):
            va = members[i].val
            score, per_case[i] = validation_dice(dice_counts(preds[i], va.labels, va.n_classes),
                                                 va.case_index, va.n_cases, protocol.dice)
            stats = EpochStats(epoch=epoch, loss=float(totals[i]) / max(steps[i], 1),
                               val_dice=float(score), lr=lr, seconds=seconds)
            curves[i].append(stats)
            if on_epoch is not None:
                on_epoch(spec, stats)
    outcomes = []
    for i in range(m):
        val = members[i].val_data
        outcome = RunOutcome(
            score=run_score([s.val_dice for s in curves[i]], protocol.score_fraction),
            curve=curves[i],
            case_dice={c.case_id: d for c, d in
                       zip(val.cases, per_case[i].mean(dim=1).float().tolist())},
            seconds=(time.perf_counter() - started) / m, device=str(device),
            precision="bf16" if bf16 else "fp32", constant_class=constant_class(preds[i]),
        )
        if protocol.final_metrics:
            from mbnas.training.final_metrics import validation_metrics

            pred = nets.predict_member(i, members[i].val.images, protocol.val_batch_size,
                                       bf16).cpu().numpy()
            outcome.metrics = validation_metrics(pred, val, protocol.surface_tolerance_mm)
        if protocol.keep_weights:
            outcome.state_dict = nets.state_dict(i)
        outcomes.append(outcome)
    return outcomes


def _fused_step(nets: FusedNetworks, optimiser: Any, data: _DeviceData,
                group: Sequence[int], batches: Sequence[torch.Tensor], protocol: Any,
                aug_gens: Sequence[torch.Generator], device: torch.device,
                bf16: bool) -> torch.Tensor:
    """One optimiser step of the members ``group``, each on its own batch (as
    ``train._train_step``); their losses."""
    xs, ys = [], []
    for idx, gen in zip(batches, aug_gens, strict=True):
        x, y = augment_batch(data.images[idx], data.labels[idx], protocol.augment, gen)
        xs.append(intensity_augment(x, protocol.intensity, gen))
        ys.append(y)
    x, y = torch.stack(xs), torch.stack(ys)
    with _autocast(device, bf16):
        logits = nets.call_members(group, x)
    losses = torch.stack([soft_dice_loss(logits[i], y[i], protocol.loss_smooth)
                          for i in range(len(xs))])
    optimiser.zero_grad(set_to_none=True)
    losses.sum().backward()
    if isinstance(optimiser, StackedAdam):
        optimiser.step(group)
    else:
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
        cb = None if on_epoch is None else functools.partial(on_epoch, specs[0])
        return [execute_run(specs[0], ctx, cb)]
    started, t0 = utc_now(), time.perf_counter()
    try:
        outcomes = train_fused(specs, ctx, on_epoch)
    except (KeyboardInterrupt, SystemExit, HookError):  # a progress hook's bug: no result
        raise
    except Exception:
        reason = traceback.format_exc().strip().splitlines()[-1]
        print(f"fused training of {specs[0].arch_key} fold {specs[0].fold} failed "
              f"({reason}); training its runs one by one")
        return [execute_run(s, ctx, None if on_epoch is None else
                            functools.partial(on_epoch, s)) for s in specs]
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
