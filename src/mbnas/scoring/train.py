"""The evaluator: an architecture's score is its cross-validated training result (paper, 2.3).

``Evaluator.evaluate_many`` is the objective a search strategy calls. For every
architecture it needs the runs (fold x seed) of the protocol; runs already in the store
are read back, the others go to the executor together (so they can run in parallel) and
each finished run is committed to the store the moment it arrives. The score of an
architecture is the mean run score over folds x seeds; an architecture with a failed run
scores NaN (failed), which a strategy ranks below everything.

A run that failed for a reason of its environment (``mbnas.training.failures``) is trained
again whenever it is asked for, and a batch in which one happens raises
:class:`~mbnas.training.failures.RunFailure` instead of returning scores, so a strategy is
never told a score the network did not earn. With ``retry_failed`` every failed run is
trained again (once per evaluator).
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mbnas.store import ResultStore, RunRecord
from mbnas.training.failures import ENVIRONMENT, RunFailure, last_line
from mbnas.training.protocol import Protocol
from mbnas.training.runs import (
    Executor,
    InProcessExecutor,
    RunContext,
    RunHooks,
    RunSpec,
    execute_run,
)

Architecture = Any  # a Genotype or a Baseline: anything with to_dict() and key
log = logging.getLogger("mbnas.training")


@dataclass(frozen=True)
class EvaluationResult:
    """All runs of one architecture under one protocol, and their aggregate."""

    architecture: dict[str, Any]
    arch_key: str
    runs: tuple[RunRecord, ...]
    n_trained: int

    @property
    def failed(self) -> bool:
        return any(r.status != "finished" for r in self.runs)

    @property
    def scores(self) -> list[float]:
        # A finished run has a score (RunRecord refuses one without).
        return [float(r.score) for r in self.runs
                if r.status == "finished" and r.score is not None]

    @property
    def score(self) -> float:
        """Mean validation Dice over folds x seeds; NaN when any run failed."""
        return math.nan if self.failed or not self.runs else float(np.mean(self.scores))

    @property
    def std(self) -> float:
        return math.nan if self.failed or not self.runs else float(np.std(self.scores))

    @property
    def seconds(self) -> float:
        return float(sum(r.seconds for r in self.runs))


class Evaluator:
    """Trains and scores architectures with one protocol on one dataset split."""

    def __init__(
        self,
        ctx: RunContext,
        protocol: Protocol,
        store: ResultStore,
        executor: Executor | None = None,
        hooks: RunHooks | None = None,
        retry_failed: bool = False,
    ) -> None:
        if len(ctx.folds) != protocol.folds:
            raise ValueError(f"{len(ctx.folds)} folds given, protocol wants {protocol.folds}")
        self.ctx = ctx
        self.protocol = protocol
        self.store = store
        self.executor = executor or InProcessExecutor()
        self.hooks = hooks
        self.retry_failed = retry_failed
        self._retried: set[tuple[str, int, int]] = set()

    def _stored(self, spec: RunSpec) -> bool:
        """Whether the store holds a run that answers this spec (no training needed)."""
        record = self.store.get(spec.arch_key, self.protocol.key, spec.fold, spec.seed)
        if record is None:
            return False
        if record.status == "finished":
            return True
        if record.failure == ENVIRONMENT:
            return False
        return not self.retry_failed or (spec.arch_key, spec.fold, spec.seed) in self._retried

    def specs(self, architecture: Architecture) -> list[RunSpec]:
        d, key = architecture.to_dict(), architecture.key
        return [
            RunSpec(d, key, fold, seed, self.protocol)
            for fold in range(self.protocol.folds)
            for seed in self.protocol.seeds
        ]

    def train_missing(self, specs: Sequence[RunSpec]) -> dict[str, int]:
        """Train the runs not yet in the store, committing each; runs trained per arch key."""
        todo: list[RunSpec] = []
        seen: set[tuple[str, int, int]] = set()
        for spec in specs:
            ident = (spec.arch_key, spec.fold, spec.seed)
            if ident in seen or self._stored(spec):
                continue
            seen.add(ident)
            todo.append(spec)
        trained: dict[str, int] = {}
        environment: list[RunRecord] = []
        # optional hooks: a counter of all runs (the stored ones count as done)
        distinct = len({(s.arch_key, s.fold, s.seed) for s in specs})
        _call(self.hooks, "runs_queued", len(todo), distinct - len(todo))
        if todo:
            for record in self.executor.run(todo, self.ctx, self.hooks):
                self.store.put(record)  # committed now: a crash after this loses nothing
                _call(self.hooks, "run_done", record)
                self._retried.add((record.arch_key, record.fold, record.seed))
                trained[record.arch_key] = trained.get(record.arch_key, 0) + 1
                log.info("run %s fold %d seed %d %s: score %s in %.1f s", record.arch_key,
                         record.fold, record.seed, record.status, record.score,
                         record.seconds)
                constant = (record.metrics or {}).get("constant_prediction")
                if constant is not None:
                    log.warning("run %s fold %d seed %d predicted class %d on every "
                                "validation pixel: a constant mask, its score says little "
                                "about the architecture (too few epochs?)", record.arch_key,
                                record.fold, record.seed, constant)
                if record.failure == ENVIRONMENT:
                    environment.append(record)
                elif record.status != "finished":
                    warnings.warn(
                        f"run {record.arch_key} fold {record.fold} seed {record.seed} "
                        f"failed: {last_line(record.error)}",
                        RuntimeWarning, stacklevel=3,
                    )
        if environment:
            first = environment[0]
            raise RunFailure(
                f"{len(environment)} of {len(todo)} runs failed because of the machine, not "
                f"the network; they are trained again when you run the same command again. "
                f"First: run {first.arch_key} fold {first.fold} seed {first.seed} on "
                f"{first.device}: {last_line(first.error)}")
        return trained

    def evaluate(self, architecture: Architecture) -> EvaluationResult:
        return self.evaluate_many([architecture])[0]

    def evaluate_many(self, architectures: Sequence[Architecture]) -> list[EvaluationResult]:
        """Evaluate several architectures; their missing runs go to the executor together."""
        specs = [spec for arch in architectures for spec in self.specs(arch)]
        trained = self.train_missing(specs)
        pkey = self.protocol.key
        results = []
        for arch in architectures:
            specs = self.specs(arch)
            found = [self.store.get(s.arch_key, pkey, s.fold, s.seed) for s in specs]
            missing = [s.label for s, r in zip(specs, found) if r is None]
            if missing:  # an executor that lost work must not pass silently
                raise RuntimeError(f"runs missing after execution: {', '.join(missing)}")
            runs = tuple(r for r in found if r is not None)
            results.append(EvaluationResult(arch.to_dict(), arch.key, runs,
                                            trained.get(arch.key, 0)))
        return results


def _call(hooks: Any, name: str, *args: Any) -> None:
    """Call the optional hook method ``name`` when the hooks have it."""
    method = getattr(hooks, name, None)
    if method is not None:
        method(*args)


__all__ = ["EvaluationResult", "Evaluator", "execute_run"]
