"""`--strategy dnas`: differentiable NAS (GDAS-style) over the same space, folds and protocol.

**Why the registration lives here and the work elsewhere.** A strategy of this package
asks for networks and is told their scores, keeps its whole state in JSON and imports no
torch, so that a killed search resumes exactly and the strategies are tested on a toy
space (:mod:`mbnas.strategies.base`). Differentiable NAS does not fit that contract: its
search *is* training (architecture parameters learned by gradient descent, jointly with
a supernet's weights), so it cannot be driven by scores told one network at a time. It is
therefore split in two, at the one point where it does fit:

1. **The architecture search** (torch): :mod:`mbnas.scoring.dnas_search` trains the
   architecture parameters (:mod:`mbnas.scoring.dnas_arch`) and one supernet per fold,
   checkpointed every epoch in the run folder, and decodes the most probable valid
   network and the next most probable ones. The search driver runs it before its loop,
   because the registration below names it (:attr:`StrategyDefinition.one_shot`); the
   driver imports it by name, so this package stays free of torch.
2. **The stand-alone check** (this module): :class:`DecodedCandidates` is an ordinary
   ask/tell strategy that is *offered* those decoded networks, asks for them, and is told
   their stand-alone scores from the search's scoring method (``train``: folds x seeds of
   the search protocol, as ``--retrain-top`` does for a supernet search). The best of them
   by stand-alone score is ``best.json``; the search log, the report, ``evaluate`` and
   ``--repeats`` read a DNAS run folder as any other.

So the one decision the DNAS phase hands over is a ranked list of networks, which is
JSON. Its settings (:class:`DnasOptions`) come from the config's ``strategy_options``
(``--strategy-option KEY=VALUE``); how many decoded networks are trained stand-alone is
``--retrain-top K`` (as for a supernet search), capped by ``--budget``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mbnas.errors import ConfigError
from mbnas.strategies.base import SpaceLike, Strategy
from mbnas.strategies.records import Batch, Decode
from mbnas.strategies.registry import register_strategy

#: The figures the cost term may penalise (those measured without a device clock).
COST_TERMS = ("params", "macs", "memory")


@dataclass(frozen=True)
class DnasOptions:
    """The settings of a DNAS search (``--strategy-option KEY=VALUE``; saved in the config).

    Attributes:
        epochs: Epochs of supernet and architecture training, warm-up included; None:
            the search protocol's ``supernet_epochs`` (``--supernet-epochs``, as the
            supernet of ``--scoring supernet``), else its ``epochs``.
        warmup_epochs: First epochs training the weights only, on networks sampled
            uniformly from the space (so every op is trained before the architecture
            parameters start to prefer some; DARTS-family searches otherwise collapse
            towards the ops that learn fastest).
        weight_lr: The supernet weights' learning rate (Adam, poly schedule); None: the
            protocol's ``lr``.
        arch_lr: The architecture parameters' learning rate (Adam, betas 0.5 / 0.999 as
            DARTS).
        arch_weight_decay: Weight decay of the architecture parameters (DARTS: 1e-3).
        tau_start, tau_end: The Gumbel-softmax temperature, decayed linearly over the
            epochs after the warm-up (GDAS: 10 to 0.1).
        entropy_weight: Times the summed entropy of the sampled variables' distributions,
            added to the architecture loss: > 0 sharpens them (DiNTS), < 0 keeps exploring.
        cost_weight: Times the sampled network's cost relative to the space's base network
            (``cost``), added to the architecture loss (0: no cost term; DiNTS's memory
            term is the model).
        cost: The cost figure of that term: params, macs or memory.
        beam: The width of the beam search that finds the most probable networks.
    """

    epochs: int | None = None
    warmup_epochs: int = 1
    weight_lr: float | None = None
    arch_lr: float = 3e-3
    arch_weight_decay: float = 1e-3
    tau_start: float = 10.0
    tau_end: float = 0.1
    entropy_weight: float = 0.0
    cost_weight: float = 0.0
    cost: str = "params"
    beam: int = 64

    def __post_init__(self) -> None:
        for name in ("epochs", "weight_lr"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ConfigError(f"strategy option {name} must be > 0, got {value}")
        for name in ("arch_lr", "tau_start", "tau_end"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"strategy option {name} must be > 0, got "
                                  f"{getattr(self, name)}")
        for name in ("beam",):
            if getattr(self, name) < 1:
                raise ConfigError(f"strategy option {name} must be at least 1, got "
                                  f"{getattr(self, name)}")
        if self.warmup_epochs < 0 or self.arch_weight_decay < 0 or self.cost_weight < 0:
            raise ConfigError("strategy options warmup_epochs, arch_weight_decay and "
                              "cost_weight must be >= 0")
        if self.cost not in COST_TERMS:
            raise ConfigError(f"strategy option cost must be one of {', '.join(COST_TERMS)}, "
                              f"got {self.cost!r}")
        for name in ("entropy_weight", "cost_weight"):
            if not math.isfinite(getattr(self, name)):
                raise ConfigError(f"strategy option {name} must be finite")

    def search_epochs(self, protocol_epochs: int) -> int:
        """All epochs of the DNAS phase (warm-up included); ``protocol_epochs``: the
        protocol's supernet epochs."""
        return self.epochs if self.epochs is not None else protocol_epochs

    def tau(self, epoch: int, total: int) -> float:
        """The temperature of ``epoch`` (from 0): linear from tau_start after the warm-up
        to tau_end at the last epoch."""
        span = total - 1 - self.warmup_epochs
        if span <= 0:
            return self.tau_end
        t = min(1.0, max(0.0, (epoch - self.warmup_epochs) / span))
        return self.tau_start + t * (self.tau_end - self.tau_start)

    def to_dict(self) -> dict[str, Any]:
        """The options that differ from their defaults (what ``config.yaml`` keeps)."""
        default = DnasOptions()
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if getattr(self, f.name) != getattr(default, f.name)}

    @classmethod
    def from_dict(cls, values: Mapping[str, Any] | None) -> DnasOptions:
        """Options from a mapping whose values may be text (``KEY=VALUE`` pairs).

        Raises:
            ConfigError: an unknown option (the valid ones are listed) or a bad value.
        """
        fields = {f.name: f for f in dataclasses.fields(cls)}
        out: dict[str, Any] = {}
        for key, value in dict(values or {}).items():
            if key not in fields:
                raise ConfigError(f"strategy option {key!r} is not an option of dnas; "
                                  f"valid: {', '.join(fields)}")
            out[key] = _coerce(key, value, getattr(cls(), key))
        return cls(**out)


def _coerce(key: str, value: Any, default: Any) -> Any:
    if isinstance(value, str) and value.strip().lower() in ("none", "null", ""):
        return None
    kind = str if key == "cost" else int if key in ("epochs", "warmup_epochs", "beam") \
        else float
    try:
        if isinstance(value, bool):
            raise ValueError
        if kind is int:
            number = float(value)
            if not number.is_integer():
                raise ValueError
            return int(number)
        return kind(value)
    except (TypeError, ValueError, OverflowError):
        raise ConfigError(f"strategy option {key} must be {kind.__name__}, got {value!r} "
                          f"(default {default})") from None


class DecodedCandidates(Strategy):
    """Evaluates the networks the DNAS phase decoded, best by probability first.

    Args:
        space: The space searched (its name is checked on resume).
        budget: The most networks evaluated (the driver offers ``--retrain-top`` K).
        rng: Unused for choices (the order is the decoder's), kept in the checkpoint.
        decode: Rebuilds a genotype from its ``to_dict()``.
    """

    name = "dnas"

    def __init__(self, space: SpaceLike, *, budget: int, rng: np.random.Generator | int | None,
                 decode: Decode) -> None:
        super().__init__(budget=budget, rng=rng, decode=decode, space_name=space.name)
        self.space = space
        self._candidates: list[Any] | None = None
        self._log_probs: list[float] = []

    def offer(self, candidates: Sequence[Any], log_probs: Sequence[float]) -> None:
        """The decoded networks, most probable first (the argmax first of all). Offered
        again after a resume, they must be the ones in the checkpoint.

        Raises:
            RuntimeError: an offer that differs from the checkpoint's (a bug: the DNAS
                phase resumes to the same decoded networks).
        """
        keys = [g.key for g in candidates]
        for g in candidates:
            if not self.space.contains(g):
                raise RuntimeError(f"DNAS decoded {g.key}, which is not in the space")
        if self._candidates is not None and [g.key for g in self._candidates] != keys:
            raise RuntimeError("the DNAS phase decoded other networks than the checkpoint "
                               "holds: delete nothing, report this as a bug")
        self._candidates = list(candidates)
        self._log_probs = [float(x) for x in log_probs]

    @property
    def candidates(self) -> list[Any]:
        return list(self._candidates or [])

    @property
    def stop_reason(self) -> str | None:
        if not self.finished:
            return None
        return "budget" if self._ledger.remaining() == 0 else "decoded"

    def _over(self) -> bool:
        return self._candidates is not None and all(
            self._ledger.known(g) for g in self._candidates)

    def _propose(self) -> Batch | None:
        if self._candidates is None:
            raise RuntimeError("the dnas strategy asks for the networks its DNAS phase "
                               "decoded: the search driver offers them first")
        new = [g for g in self._candidates if not self._ledger.known(g)]
        new = new[:self._ledger.remaining()]
        return Batch(tuple(new), self.name) if new else None

    def _absorb(self, batch: Batch, scores: list[float | None]) -> list[bool]:
        best = self._ledger.best()
        best_score = None if best is None else best.score
        accepted = []
        for score in scores:
            better = score is not None and (best_score is None or score > best_score)
            best_score = score if better else best_score
            accepted.append(better)
        return accepted

    def _state(self) -> dict[str, Any]:
        return {"candidates": None if self._candidates is None else
                [g.to_dict() for g in self._candidates], "log_probs": self._log_probs}

    def _load_state(self, state: dict[str, Any]) -> None:
        found = state["candidates"]
        self._candidates = None if found is None else [self._decode(g) for g in found]
        self._log_probs = [float(x) for x in state.get("log_probs", [])]


@register_strategy(
    DecodedCandidates.name, one_shot="mbnas.commands.search.dnas:architecture_search",
    options=DnasOptions, costs=True,
    about="differentiable NAS (GDAS): architecture parameters trained with a supernet, "
          "the decoded top networks trained stand-alone",
    card="differentiable NAS (GDAS-style Gumbel-softmax architecture parameters trained "
         "with a weight-sharing supernet; the decoded networks retrained stand-alone)")
def _make_dnas(space: SpaceLike, *, budget: int, rng: np.random.Generator | int | None,
               decode: Decode, costs: Sequence[str] = (), restarts: bool = False,
               **_: Any) -> DecodedCandidates:
    if restarts:
        raise ConfigError("restarts: dnas has no local optimum to restart from; drop "
                          "--restarts")
    if costs:
        raise ConfigError("dnas searches Dice; for a cost term use --strategy-option "
                          "cost_weight=W (and cost=params|macs|memory); --max-* limits "
                          "apply to the decoded networks")
    return DecodedCandidates(space, budget=budget, rng=rng, decode=decode)
