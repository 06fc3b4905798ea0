"""The evaluator: an architecture's score is its cross-validated training result (paper, 2.3).

``Evaluator.evaluate_many`` is the objective a search strategy calls. For every
architecture it needs the runs (fold x seed) of the protocol; runs already in the store
are read back, the others go to the executor together (so they can run in parallel) and
each finished run is committed to the store the moment it arrives. The score of an
architecture is the mean run score over folds x seeds; an architecture with a failed run
scores NaN (failed), which a strategy ranks below everything.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mbnas.engine.config import Protocol
from mbnas.engine.runs import (
    Executor,
    InProcessExecutor,
    RunContext,
    RunHooks,
    RunSpec,
    execute_run,
)
from mbnas.store import ResultStore, RunRecord

Architecture = Any  # a Genotype or a Baseline: anything with to_dict() and key


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
        return [float(r.score) for r in self.runs if r.status == "finished"]

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
    ) -> None:
        if len(ctx.folds) != protocol.folds:
            raise ValueError(f"{len(ctx.folds)} folds given, protocol wants {protocol.folds}")
        self.ctx = ctx
        self.protocol = protocol
        self.store = store
        self.executor = executor or InProcessExecutor()
        self.hooks = hooks

    def specs(self, architecture: Architecture) -> list[RunSpec]:
        d, key = architecture.to_dict(), architecture.key
        return [
            RunSpec(d, key, fold, seed, self.protocol)
            for fold in range(self.protocol.folds)
            for seed in self.protocol.seeds
        ]

    def train_missing(self, specs: Sequence[RunSpec]) -> dict[str, int]:
        """Train the runs not yet in the store, committing each; runs trained per arch key."""
        pkey = self.protocol.key
        todo: list[RunSpec] = []
        seen: set[tuple[str, int, int]] = set()
        for spec in specs:
            ident = (spec.arch_key, spec.fold, spec.seed)
            if ident in seen or self.store.get(spec.arch_key, pkey, spec.fold, spec.seed):
                continue
            seen.add(ident)
            todo.append(spec)
        trained: dict[str, int] = {}
        if todo:
            for record in self.executor.run(todo, self.ctx, self.hooks):
                self.store.put(record)  # committed now: a crash after this loses nothing
                trained[record.arch_key] = trained.get(record.arch_key, 0) + 1
                if record.status != "finished":
                    last = (record.error or "").strip().splitlines()[-1:] or ["unknown error"]
                    warnings.warn(
                        f"run {record.arch_key} fold {record.fold} seed {record.seed} "
                        f"failed: {last[0]}",
                        RuntimeWarning, stacklevel=3,
                    )
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
            runs = tuple(self.store.get(s.arch_key, pkey, s.fold, s.seed) for s in specs)
            missing = [s.label for s, r in zip(specs, runs) if r is None]
            if missing:  # an executor that lost work must not pass silently
                raise RuntimeError(f"runs missing after execution: {', '.join(missing)}")
            results.append(EvaluationResult(arch.to_dict(), arch.key, runs,
                                            trained.get(arch.key, 0)))
        return results


__all__ = ["EvaluationResult", "Evaluator", "execute_run"]
