"""`--fidelity`: a cheap first look at each probed option before the full protocol.

``--fidelity 0.25,1`` trains every option of a batch first at rung 0.25: a quarter of the
epochs (the poly schedule compressed into them, as ``epochs`` sets its length), fold 0
of the search's own split and the protocol's first seed, i.e. one training instead of
folds x seeds. The network the option must beat (the bar) is trained the same way. Only
the options whose low-fidelity score is not below the bar's go on (a tie is no
evidence), and of those at most half of the rung's options, the best ones (successive
halving, eta 2). The last rung is
always 1: the full protocol, whose score alone the strategy is told. An option dropped
at a lower rung is told as no score (None), so the strategy rejects it as it would a
worse one; the log says at which rung and against which bar it was dropped.

The bar is the current network of a local search (Bilevel: the best so far), and for
Pareto local search the archive members that cost no more than the option in every
objective (the ones that would dominate it); with no bar every option goes on, and for
Pareto search no halving is applied (a cheaper option may enter the front with a lower
Dice).

A rung is its own protocol (``rung_protocol``: another ``epochs``, so another protocol
key): its runs are stored beside the full ones and never mixed with them, and a resumed
search reads them back, so it makes the same decisions without training them again.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from mbnas.errors import ConfigError
from mbnas.scoring.train import Architecture, Evaluator
from mbnas.training.protocol import Protocol
from mbnas.training.runs import RunSpec

#: Successive halving keeps at most 1/ETA of a rung's options (rounded up).
ETA = 2


def parse_rungs(value: Any, what: str = "fidelity") -> tuple[float, ...]:
    """``"0.25,1"`` or ``[0.25, 1]`` -> ``(0.25, 1.0)``; empty: off.

    Raises:
        ConfigError: a rung that is not a number in (0, 1], rungs not increasing, or a
            last rung other than 1.
    """
    if value is None or value == "" or value == () or value == []:
        return ()
    items = value.split(",") if isinstance(value, str) else list(value)
    try:
        rungs = tuple(float(x) for x in items)
    except (TypeError, ValueError):
        raise ConfigError(f"{what}: rungs must be numbers such as 0.25,1, got {value!r}"
                          ) from None
    if any(not math.isfinite(r) or not 0 < r <= 1 for r in rungs):
        raise ConfigError(f"{what}: every rung must be in (0, 1], got {value!r}")
    if any(b <= a for a, b in zip(rungs, rungs[1:], strict=False)):
        raise ConfigError(f"{what}: rungs must increase, got {value!r}")
    if rungs[-1] != 1 or len(rungs) < 2:
        raise ConfigError(f"{what}: the last rung must be 1 (the full protocol) after at "
                          f"least one lower rung, such as 0.25,1; got {value!r}")
    return rungs


def rung_protocol(protocol: Protocol, rung: float) -> Protocol:
    """The protocol of a low rung: ``rung`` of the epochs (at least one)."""
    return dataclasses.replace(protocol, epochs=max(1, round(rung * protocol.epochs)))


def rung_keys(protocol: Protocol, rungs: Sequence[float]) -> list[str]:
    """Protocol keys of the low rungs (their runs share the search's store)."""
    return [rung_protocol(protocol, r).key for r in rungs[:-1]]


@dataclass(frozen=True)
class Dropped:
    """Why an option stopped at a low rung."""

    rung: float
    epochs: int
    score: float | None
    bar: float | None
    halved: bool = False  # above the bar, but not in the best 1/ETA of the rung

    def note(self) -> str:
        what = "failed" if self.score is None else f"{self.score:.4f}"
        if self.halved:
            why = f", not in the best 1/{ETA} of its batch"
        elif self.bar is not None:
            why = f", below the bar's {self.bar:.4f}"
        else:
            why = ""
        return f"dropped at fidelity {self.rung:g} ({self.epochs} epochs, 1 run): {what}{why}"

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Dropped:
        return cls(float(d["rung"]), int(d["epochs"]), d.get("score"), d.get("bar"),
                   bool(d.get("halved", False)))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class Screen:
    """Runs the low rungs of ``rungs`` for batches of options (see the module docstring)."""

    def __init__(self, evaluator: Evaluator, rungs: Sequence[float]) -> None:
        self.rungs = tuple(rungs)
        full = evaluator.protocol
        self._levels = [
            Evaluator(evaluator.ctx, rung_protocol(full, r), evaluator.store,
                      evaluator.executor, evaluator.hooks, evaluator.retry_failed)
            for r in self.rungs[:-1]]
        self.trained = [0] * len(self.rungs)  # trainings run now, per rung (last: full)

    def _spec(self, level: Evaluator, arch: Architecture) -> RunSpec:
        p = level.protocol
        return RunSpec(arch.to_dict(), arch.key, 0, p.seeds[0], p)

    def _scores(self, level: Evaluator, archs: Sequence[Architecture]
                ) -> dict[str, float | None]:
        trained = level.train_missing([self._spec(level, a) for a in archs])
        self.trained[self._levels.index(level)] += sum(trained.values())
        out: dict[str, float | None] = {}
        for a in archs:
            spec = self._spec(level, a)
            record = level.store.get(a.key, level.protocol.key, spec.fold, spec.seed)
            if record is None:
                raise RuntimeError(f"runs missing after execution: {spec.label}")
            out[a.key] = (float(record.score) if record.status == "finished"
                          and record.score is not None else None)
        return out

    def screen(self, batch: Sequence[Architecture],
               bars: Callable[[Architecture], Sequence[Architecture]],
               halving: bool = True) -> list[Dropped | None]:
        """One entry per option: None if it goes on to the full protocol, else why not.

        ``bars(option)``: the networks the option must beat (its score must be above
        the best of theirs at the same rung).
        """
        alive = list(range(len(batch)))
        dropped: list[Dropped | None] = [None] * len(batch)
        for rung, level in zip(self.rungs, self._levels, strict=False):
            if not alive:
                break
            bar_of = {i: list(bars(batch[i])) for i in alive}
            need = {a.key: a for i in alive for a in [batch[i], *bar_of[i]]}
            scores = self._scores(level, list(need.values()))
            keep = []
            kept_score: dict[int, float] = {}
            for i in alive:
                own = scores[batch[i].key]
                bar_scores = [s for b in bar_of[i] if (s := scores[b.key]) is not None]
                bar = max(bar_scores) if bar_scores else None
                # A tie is no evidence against the option (often both are at the floor
                # of a short training, Dice 0): it may still beat the bar in full.
                if own is not None and (bar is None or own >= bar):
                    keep.append(i)
                    kept_score[i] = own
                else:
                    dropped[i] = Dropped(rung, level.protocol.epochs, own, bar)
            if halving:
                cap = -(-len(alive) // ETA)
                ranked = sorted(keep, key=lambda i: -kept_score[i])  # stable
                for i in ranked[cap:]:
                    dropped[i] = Dropped(rung, level.protocol.epochs,
                                         scores[batch[i].key], None, halved=True)
                keep = sorted(ranked[:cap])
            alive = keep
        return dropped


__all__ = ["ETA", "Dropped", "Screen", "parse_rungs", "rung_keys", "rung_protocol"]
