"""The DNAS phase of ``--strategy dnas``: architecture parameters and supernet weights
trained alternately, checkpointed every epoch, then decoded.

Why it sits here and not among the strategies: :mod:`mbnas.strategies.dnas`. This module
does the torch work: one :class:`~mbnas.scoring.supernet.SuperNet` per fold (its weights
shared by every network of the space) and one
:class:`~mbnas.scoring.dnas_arch.ArchitectureDistribution` for the whole search (one
categorical distribution per searched variable).

**One epoch** visits every fold in turn. A fold's training cases are split once, by the
search seed, into two halves (as DARTS and DiNTS split their training set): the supernet
weights learn on the first, the architecture parameters on the second. Each step is

1. a **weight step** on a batch of the first half: a network sampled from the
   distribution (during the warm-up epochs: uniformly from the space, the parameters
   frozen), the search protocol's augmentation and soft Dice loss, Adam with the poly
   schedule;
2. an **architecture step** on a batch of the second half (not during the warm-up): a
   network sampled with straight-through Gumbel gates (GDAS) at the epoch's temperature,
   loss = soft Dice + ``entropy_weight`` x the sampled variables' entropy +
   ``cost_weight`` x the network's cost relative to the space's base network; the cost
   enters through the product of the gates (its value is the cost, its gradient moves
   the probability of the chosen options, the straight-through estimator of the loss
   itself). Only the architecture parameters are updated.

Steps per fold and epoch: the protocol's passes over the first half, in batches.

**Checkpoint** (``<run>/dnas/checkpoint.pt``, written atomically after every epoch):
weights, BatchNorm statistics and optimiser states of every fold's supernet, the
architecture parameters and their optimiser, and the state of every random generator.
A killed search resumes from the last finished epoch and goes on exactly as the
uninterrupted one (same parameters, same decoded networks). The checkpoint names the
protocol key, the options, the space and the seed; another search's is refused.

**Decoding** (``dnas/decoded.json``): the masked argmax network first, then the most
probable other networks (beam search), those over a ``--max-*`` limit left out, up to
``--retrain-top`` K. Precision (bf16 autocast) and device are the search protocol's.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mbnas.data.slices import SliceData
from mbnas.errors import ConfigError
from mbnas.io import atomic_write, atomic_write_json
from mbnas.nn.weight_init import initialise
from mbnas.scoring.dnas_arch import ArchitectureDistribution, SampledArchitecture
from mbnas.scoring.supernet import SuperNet
from mbnas.scoring.supernet_train import supernet_epochs
from mbnas.spaces.mbnas.definitions import SearchSpace
from mbnas.spaces.mbnas.genotype import Genotype
from mbnas.strategies.dnas import DnasOptions
from mbnas.training.augment import augment_batch
from mbnas.training.device import select_device, use_bf16
from mbnas.training.intensity import intensity_augment
from mbnas.training.loss import poly_lr, set_poly_lr, soft_dice_loss
from mbnas.training.protocol import Protocol
from mbnas.training.runs import RunContext, fold_data
from mbnas.training.sampling import foreground_slices, pass_order
from mbnas.training.train import _DeviceData, _train_step

log = logging.getLogger("mbnas.search")
CHECKPOINT_FORMAT = "mbnas.dnas"


class _Half:
    """Half of a fold's training cases on the device (the stand-alone trainer's tensors),
    and where its current pass over them is."""

    def __init__(self, data: SliceData, device: torch.device) -> None:
        self.data = _DeviceData(data, device, False)
        self.foreground = foreground_slices(self.data.labels)
        self.order: torch.Tensor | None = None
        self.at = 0

    def batch(self, protocol: Protocol, gen: torch.Generator) -> torch.Tensor:
        """The next batch of indices (a new pass when one ends); at least 2 where possible,
        BatchNorm needs two samples."""
        n, bs = len(self.data.images), protocol.batch_size
        if self.order is None or self.at >= n or (n - self.at < 2 <= n):
            self.order = pass_order(n, bs, protocol.foreground_fraction, self.foreground, gen)
            self.at = 0
        idx = self.order[self.at:self.at + bs]
        self.at += bs
        return idx.to(self.data.images.device)

    def steps(self, protocol: Protocol) -> int:
        """Batches in the protocol's epoch over this half."""
        n = len(self.data.images)
        return protocol.passes_per_epoch(n) * max(1, -(-n // protocol.batch_size))


def split_cases(case_ids: Sequence[str], seed: int) -> tuple[list[str], list[str]]:
    """A fold's training cases in two halves (weights, architecture), by the search seed.

    Raises:
        ConfigError: fewer than 2 training cases.
    """
    if len(case_ids) < 2:
        raise ConfigError(f"dnas needs at least 2 training cases per fold (one for the "
                          f"weights, one for the architecture); a fold has {len(case_ids)}")
    order = np.random.default_rng(seed).permutation(len(case_ids))
    ids = [case_ids[i] for i in order]
    half = (len(ids) + 1) // 2
    return sorted(ids[:half]), sorted(ids[half:])


class DnasSearch:
    """Trains and decodes one DNAS search; see the module docstring.

    Args:
        space: The space searched.
        ctx: The data and the folds (the run context of the search).
        protocol: The search protocol (batch, augmentation, loss, lr schedule, width).
        options: The DNAS settings.
        seed: The search seed (halves, samples, batches, initialisation).
        folder: Where the checkpoint and the decoded networks go (``<run>/dnas``).
        cost: Genotype -> its cost relative to the base network; needed when
            ``options.cost_weight`` > 0.
        device: "auto", "cpu" or "cuda".
    """

    def __init__(self, space: SearchSpace, ctx: RunContext, protocol: Protocol,
                 options: DnasOptions, seed: int, folder: Path,
                 cost: Callable[[Genotype], float] | None = None, device: str = "auto") -> None:
        if options.cost_weight > 0 and cost is None:
            raise ValueError("a cost term needs the cost function")
        self.space, self.protocol, self.options, self.seed = space, protocol, options, seed
        self.folder = Path(folder)
        self.cost = cost
        self.device = select_device(device)
        self.epochs = options.search_epochs(supernet_epochs(protocol))
        data = ctx.data
        self.halves: list[tuple[_Half, _Half]] = []
        for f in range(len(ctx.folds)):
            train, _ = fold_data(data, ctx.folds, f)
            first, second = split_cases(list(train.case_ids), seed + 1000 * f)
            self.halves.append((_Half(train.subset(first), self.device),
                                _Half(train.subset(second), self.device)))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)  # initialised as the supernet of --scoring supernet
            self.nets = [initialise(SuperNet(space, data.in_channels, data.n_classes,
                                             protocol.base_channels), protocol.init
                                    ).to(self.device) for _ in ctx.folds]
        self.bf16 = use_bf16(protocol, self.device)
        self.weight_lr = options.weight_lr or protocol.lr
        self.weight_opts = [torch.optim.Adam(n.parameters(), lr=self.weight_lr,
                                             weight_decay=protocol.weight_decay)
                            for n in self.nets]
        self.dist = ArchitectureDistribution(space).to(self.device)
        self.arch_opt = torch.optim.Adam(self.dist.parameters(), lr=options.arch_lr,
                                         betas=(0.5, 0.999),
                                         weight_decay=options.arch_weight_decay)
        self.rng = np.random.default_rng(seed)  # uniform samples of the warm-up
        self.sample_gen = torch.Generator().manual_seed(seed + 1)
        self.order_gen = torch.Generator().manual_seed(seed + 2)
        self.aug_gen = torch.Generator(device=self.device).manual_seed(seed + 3)
        self.epoch = 0
        self.history: list[dict[str, Any]] = []

    # -- files ---------------------------------------------------------------------------
    @property
    def checkpoint(self) -> Path:
        return self.folder / "checkpoint.pt"

    @property
    def decoded_file(self) -> Path:
        return self.folder / "decoded.json"

    def _meta(self) -> dict[str, Any]:
        return {"format": CHECKPOINT_FORMAT, "protocol_key": self.protocol.key,
                "options": self.options.to_dict(), "space": self.space.name,
                "seed": self.seed, "epochs": self.epochs}

    def save(self) -> None:
        """Everything needed to go on exactly, after a finished epoch (atomic)."""
        state = {
            "meta": self._meta(), "epoch": self.epoch, "history": self.history,
            "nets": [n.state_dict() for n in self.nets],
            "weight_opts": [o.state_dict() for o in self.weight_opts],
            "dist": self.dist.state_dict(), "arch_opt": self.arch_opt.state_dict(),
            "rng": self.rng.bit_generator.state,
            "gens": [g.get_state() for g in (self.sample_gen, self.order_gen, self.aug_gen)],
        }
        atomic_write(self.checkpoint, lambda f: torch.save(state, f))

    def load(self) -> bool:
        """Resume from the checkpoint if there is one; False if none.

        Raises:
            ConfigError: a checkpoint of another search (protocol, options, space, seed).
        """
        if not self.checkpoint.is_file():
            return False
        state = torch.load(self.checkpoint, map_location=self.device, weights_only=True)
        if state.get("meta") != self._meta():
            raise ConfigError(f"{self.checkpoint} belongs to another DNAS search "
                              f"({state.get('meta')}); resume with the same settings or "
                              "choose another --out")
        for net, s in zip(self.nets, state["nets"], strict=True):
            net.load_state_dict(s)
        for opt, s in zip(self.weight_opts, state["weight_opts"], strict=True):
            opt.load_state_dict(s)
        self.dist.load_state_dict(state["dist"])
        self.arch_opt.load_state_dict(state["arch_opt"])
        self.rng.bit_generator.state = state["rng"]
        for gen, s in zip((self.sample_gen, self.order_gen, self.aug_gen), state["gens"],
                          strict=True):
            gen.set_state(s.cpu() if isinstance(s, torch.Tensor) else s)
        self.epoch = int(state["epoch"])
        self.history = list(state["history"])
        return True

    # -- training ------------------------------------------------------------------------
    def _arch_loss(self, net: SuperNet, half: _Half, sample: SampledArchitecture
                   ) -> torch.Tensor:
        """The soft Dice loss of a gated sample on the next batch of ``half`` (augmented
        as a weight step's batch)."""
        idx = half.batch(self.protocol, self.order_gen)
        x, y = augment_batch(half.data.images[idx], half.data.labels[idx],
                             self.protocol.augment, self.aug_gen)
        x = intensity_augment(x, self.protocol.intensity, self.aug_gen)
        with torch.autocast(self.device.type, torch.bfloat16, enabled=self.bf16):
            logits = net(x, sample.genotype, sample.gates)
        return soft_dice_loss(logits.float(), y, self.protocol.loss_smooth)

    def run_epoch(self) -> dict[str, Any]:
        """One epoch over every fold (module docstring); its figures."""
        started = time.perf_counter()
        warm = self.epoch < self.options.warmup_epochs
        tau = self.options.tau(self.epoch, self.epochs)
        lr = poly_lr(self.weight_lr, self.epoch, self.epochs, self.protocol.poly_exponent)
        w_losses, a_losses, entropies, costs = [], [], [], []
        for net, opt, (first, second) in zip(self.nets, self.weight_opts, self.halves,
                                             strict=True):
            set_poly_lr(opt, self.weight_lr, self.epoch, self.epochs,
                        self.protocol.poly_exponent)
            net.train()
            for _ in range(first.steps(self.protocol)):
                if warm:
                    genotype = self.space.sample(self.rng)
                else:
                    with torch.no_grad():
                        genotype = self.dist.sample(self.sample_gen, tau).genotype
                idx = first.batch(self.protocol, self.order_gen)
                loss = _train_step(net.subnet(genotype), opt, first.data, idx, self.protocol,
                                   self.aug_gen, False, self.device, self.bf16)
                w_losses.append(float(loss))
                if warm:
                    continue
                sample = self.dist.sample(self.sample_gen, tau)
                entropy = sample.entropy
                # A distribution with a variable has an entropy (None: nothing searched).
                assert entropy is not None, "a DNAS search needs a space with variables"
                arch_loss = self._arch_loss(net, second, sample)
                total = arch_loss + self.options.entropy_weight * entropy
                if self.options.cost_weight > 0:
                    assert self.cost is not None  # __init__ refuses a cost weight without it
                    relative = self.cost(sample.genotype)
                    gate = torch.stack(list(sample.gates.values())).prod()
                    total = total + self.options.cost_weight * relative * gate
                    costs.append(relative)
                # Only the architecture parameters' gradients: the weights keep theirs out.
                params = list(self.dist.parameters())
                grads = torch.autograd.grad(total, params, allow_unused=True)
                self.arch_opt.zero_grad(set_to_none=True)
                for p, g in zip(params, grads, strict=True):
                    p.grad = g
                self.arch_opt.step()
                a_losses.append(float(arch_loss.detach()))
                entropies.append(float(entropy.detach()))
        if not all(math.isfinite(v) for v in w_losses + a_losses):
            from mbnas.training.failures import NonFiniteLossError

            raise NonFiniteLossError(f"the DNAS loss became non-finite in epoch {self.epoch}")
        argmax = self.dist.argmax()
        stats = {"epoch": self.epoch, "warmup": warm, "tau": tau, "lr": lr,
                 "weight_loss": _mean(w_losses), "arch_loss": _mean(a_losses),
                 "entropy": _mean(entropies), "relative_cost": _mean(costs),
                 "argmax": argmax.key, "argmax_log_prob": self.dist.log_prob(argmax),
                 "seconds": round(time.perf_counter() - started, 3)}
        self.epoch += 1
        self.history.append(stats)
        return stats

    def train(self, on_epoch: Callable[[dict[str, Any]], None] | None = None) -> None:
        """Every epoch not yet done, a checkpoint after each (resumes from the last)."""
        if self.load():
            log.info("DNAS resumed after epoch %d of %d", self.epoch, self.epochs)
        while self.epoch < self.epochs:
            stats = self.run_epoch()
            self.save()
            log.info("DNAS epoch %d/%d: tau %.3g, weight loss %.4f, architecture loss %s, "
                     "argmax %s (%.1f s)", stats["epoch"] + 1, self.epochs, stats["tau"],
                     stats["weight_loss"], stats["arch_loss"], stats["argmax"],
                     stats["seconds"])
            if on_epoch is not None:
                on_epoch(stats)

    # -- decoding ------------------------------------------------------------------------
    def decode(self, k: int, allowed: Callable[[Genotype], bool] | None = None
               ) -> list[tuple[Genotype, float]]:
        """The ``k`` networks to train stand-alone, most probable first (module
        docstring); written to ``decoded.json`` with the probabilities and the cost."""
        argmax = self.dist.argmax()
        ranked = [(argmax, self.dist.log_prob(argmax))]
        ranked += [(g, lp) for g, lp in self.dist.top_k(4 * k + 1, self.options.beam)
                   if g.key != argmax.key]
        kept = [(g, lp) for g, lp in ranked if allowed is None or allowed(g)][:k]
        if not kept:
            raise ConfigError(f"no decoded network within the limits among the "
                              f"{len(ranked)} most probable; raise the --max-* limits")
        atomic_write_json(self.decoded_file, {
            "argmax": {"genotype": argmax.to_dict(), "arch_key": argmax.key,
                       "within_limits": allowed is None or allowed(argmax)},
            "candidates": [{"genotype": g.to_dict(), "arch_key": g.key, "log_prob": lp}
                           for g, lp in kept],
            "probabilities": self.dist.probabilities(),
            "options_of_variables": self.dist.option_names(),
            "epochs": self.epoch, "seconds": round(sum(h["seconds"] for h in self.history), 3),
            "folds": len(self.nets), "protocol_key": self.protocol.key,
            "dnas_options": self.options.to_dict(), "history": self.history,
        })
        return kept


def _mean(values: Sequence[float]) -> float | None:
    return float(np.mean(values)) if values else None
