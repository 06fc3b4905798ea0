"""`--race`: stop training a candidate once it cannot beat the current architecture.

A raced candidate is trained fold by fold (the seeds of a fold together). After each
fold, with k of its N runs done, it is discarded when even the optimistic bound

    (sum of its k run scores + (N - k) x its best run score so far) / N

is not above the score it must beat: the current architecture of a local search (the
best so far for other strategies), or a better candidate of the same batch. Its score is
then the mean of its k runs, which is below that bound, so the strategy still rejects
it; the log records it as "discarded after k of N runs". The bound is a rule of thumb,
not a proof (a later run can score above the best so far), so a raced search may take
another path than the full protocol; ``benchmarks/race_phantom.py`` measures how often.

Racing is opt-in and off in the paper presets. The runs are in the store like any other,
so a raced search resumes exactly: the same scores give the same decisions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from mbnas.scoring.train import Architecture, EvaluationResult, Evaluator
from mbnas.store import RunRecord


def optimistic_score(scores: Sequence[float], n_runs: int) -> float:
    """The mean over ``n_runs`` if every remaining run scored like the best one so far."""
    return (sum(scores) + (n_runs - len(scores)) * max(scores)) / n_runs


def score_to_beat(strategy: Any) -> float | None:
    """The current architecture's score (local search), else the best score so far."""
    current = getattr(strategy, "current", None)
    if current is not None:
        for evaluation in reversed(strategy.history):
            if evaluation.key == current.key:
                score = evaluation.score
                return None if score is None or math.isnan(score) else float(score)
    best = strategy.best
    return None if best is None or math.isnan(best[1]) else float(best[1])


def race_many(evaluator: Evaluator, architectures: Sequence[Architecture],
              to_beat: float | None) -> list[EvaluationResult]:
    """Evaluate candidates one after another, each fold by fold, discarding hopeless ones.

    Returns one result per architecture; a discarded one holds only its k runs.
    """
    protocol, store = evaluator.protocol, evaluator.store
    results = []
    for arch in architectures:
        specs = evaluator.specs(arch)
        n_runs, trained = len(specs), 0
        runs: list[RunRecord] = []
        for fold in range(protocol.folds):
            fold_specs = [s for s in specs if s.fold == fold]
            trained += evaluator.train_missing(fold_specs).get(arch.key, 0)
            found = [store.get(s.arch_key, protocol.key, s.fold, s.seed) for s in fold_specs]
            if any(r is None for r in found):
                raise RuntimeError(f"runs missing after execution: {arch.key} fold {fold}")
            runs += [r for r in found if r is not None]
            if any(r.status != "finished" for r in runs):
                break  # a failed run fails the candidate: nothing more to learn
            # Every run is finished here, so each has a score (RunRecord refuses one without).
            scores = [float(r.score) for r in runs if r.score is not None]
            if (to_beat is not None and len(runs) < n_runs
                    and optimistic_score(scores, n_runs) <= to_beat):
                break
        result = EvaluationResult(arch.to_dict(), arch.key, tuple(runs), trained)
        if len(runs) == n_runs and not result.failed:
            to_beat = result.score if to_beat is None else max(to_beat, result.score)
        results.append(result)
    return results


def race_note(n_done: int, n_runs: int) -> str:
    return f"discarded after {n_done} of {n_runs} runs"


__all__ = ["optimistic_score", "race_many", "race_note", "score_to_beat"]
