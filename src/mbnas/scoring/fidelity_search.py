"""What `--fidelity` adds to the search driver: the bar, the screen, the log and the counts.

The rung logic is :mod:`mbnas.scoring.fidelity`; this module picks the networks an
option must beat from the strategy (its current network, or for cost objectives the
front members that cost no more), remembers why options were dropped (saved in the
checkpoint, so the log of a resumed search is the same), and counts the trainings of
each fidelity from the store (so a resumed search counts what it did before too).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from mbnas.scoring.fidelity import Dropped, Screen, rung_protocol
from mbnas.scoring.train import EvaluationResult, Evaluator
from mbnas.store import ResultStore
from mbnas.training.protocol import Protocol

log = logging.getLogger("mbnas.search")


def bar_networks(strategy: Any, cost: Any = None) -> Any:
    """``option -> networks it must beat``: the current network of a local search (else
    the best so far); with cost objectives, the front members no costlier in any."""
    if cost is not None and cost.costs:
        by_key = {e.key: e.genotype for e in strategy.history}
        members = [by_key[k] for k in cost.front(strategy)]
        figures = {m.key: cost.figures(m) for m in members}

        def cheaper(option: Any) -> list[Any]:
            own = cost.figures(option)
            return [m for m in members
                    if all(figures[m.key][c] <= own[c] for c in cost.costs)]
        return cheaper
    current = getattr(strategy, "current", None)
    if current is None and strategy.best is not None:
        current = strategy.best[0]
    bars = [] if current is None else [current]
    return lambda _option: bars


class FidelitySearch:
    """Screens each batch at the low rungs, then evaluates the survivors in full."""

    def __init__(self, rungs: Sequence[float], evaluator: Evaluator, cost: Any = None,
                 race: bool = False) -> None:
        self.rungs = tuple(rungs)
        self.evaluator = evaluator
        self.screen = Screen(evaluator, self.rungs)
        self.cost = cost
        self.race = race
        self.dropped: dict[str, Dropped] = {}

    def evaluate(self, strategy: Any, batch: Sequence[Any]) -> list[EvaluationResult]:
        """One result per option; a dropped one has no runs (score NaN, told as None)."""
        halving = self.cost is None or not self.cost.costs
        verdicts = self.screen.screen(batch, bar_networks(strategy, self.cost), halving)
        survivors = [a for a, v in zip(batch, verdicts, strict=True) if v is None]
        if self.race:
            from mbnas.scoring.race import race_many, score_to_beat

            full = race_many(self.evaluator, survivors, score_to_beat(strategy))
        else:
            full = self.evaluator.evaluate_many(survivors)
        by_key = {r.arch_key: r for r in full}
        results = []
        for arch, verdict in zip(batch, verdicts, strict=True):
            if verdict is None:
                results.append(by_key[arch.key])
                continue
            self.dropped[arch.key] = verdict
            log.info("option %s %s", arch.key, verdict.note())
            results.append(EvaluationResult(arch.to_dict(), arch.key, (), 0))
        return results

    # Checkpoint and outputs ------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        return {"dropped": {k: v.to_dict() for k, v in sorted(self.dropped.items())}}

    def load_state_dict(self, state: dict[str, Any] | None) -> None:
        dropped = (state or {}).get("dropped") or {}
        self.dropped = {k: Dropped.from_dict(v) for k, v in dropped.items()}

    def annotate_log(self, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Each log entry with the fidelity its score is from, or why it was dropped."""
        out = []
        for entry in entries:
            verdict = self.dropped.get(entry.get("arch_key", ""))
            if "index" not in entry:  # not an evaluation (a network skipped for a limit)
                out.append(entry)
            elif verdict is None:
                out.append({**entry, "fidelity": 1.0})
            else:
                out.append({**entry, "fidelity": verdict.rung, "dropped": verdict.note()})
        return out


def trainings_by_fidelity(store: ResultStore, protocol: Protocol,
                          rungs: Sequence[float]) -> dict[str, int]:
    """``{"0.25 (12 epochs)": n, ..., "1 (full)": n}``: the runs in the store per rung."""
    out = {}
    for rung in rungs[:-1]:
        p = rung_protocol(protocol, rung)
        out[f"{rung:g} ({p.epochs} epochs)"] = len(store.runs(protocol_key=p.key))
    out["1 (full)"] = len(store.runs(protocol_key=protocol.key))
    return out


__all__ = ["FidelitySearch", "bar_networks", "trainings_by_fidelity"]
