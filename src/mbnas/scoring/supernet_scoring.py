"""The scoring method ``supernet``: scores from one weight-sharing supernet per fold.

``mbnas search --scoring supernet``: the first batch trains (or resumes) a supernet per
fold (:mod:`mbnas.scoring.supernet_train`, ``supernet_epochs`` of the protocol); every
architecture a strategy asks for is then scored in seconds: the mean over folds of its
validation Dice with inherited weights, BatchNorm recalibrated. When the strategy has
finished, the best ``--retrain-top K`` networks by that score are trained stand-alone
with the search protocol (folds x seeds, the evaluator of ``--scoring train``), and
``best.json`` is the best of them by stand-alone score.

What says which score is which: every line of ``search_log.jsonl`` has
``score_source: supernet`` (its ``score`` is the supernet's, what the strategy was told)
and the retrained ones ``standalone_score``; ``best.json`` has ``score_source``
(``standalone`` once retrained) and ``supernet_score``; ``supernet.json`` in the run
folder holds the supernet's training cost, the scoring time and Kendall's tau between
the two scores of the retrained networks (a top-K range: a narrow check).

This module imports nothing heavy: ``mbnas search --help`` lists the method.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mbnas.io import atomic_write_json
from mbnas.scoring.registry import ScoringContext, register_scoring

SUMMARY = "supernet.json"


@dataclass(frozen=True)
class SupernetResult:
    """An architecture's supernet score (no stand-alone runs: nothing was trained)."""

    architecture: dict[str, Any]
    arch_key: str
    score: float
    runs: tuple[Any, ...] = ()
    n_trained: int = 0


class SupernetScorer:
    """Scores by a supernet per fold, then retrains the top K stand-alone (``finish``)."""

    def __init__(self, context: ScoringContext) -> None:
        from mbnas.spaces.mbnas import get_space

        self.config = context.config
        self.evaluator = context.evaluator
        self.ctx = context.run_context
        self.folder = Path(context.folder.path)
        self.space = get_space(self.config.space, self.config.max_depth, self.config.block)
        self.max_kernel = phase_kernel(self.config.strategy)
        self.scores: dict[str, float] = {}
        self.standalone: dict[str, float] = {}
        self._nets: list[Any] | None = None
        self.summary: dict[str, Any] = {}

    # -- the supernets ----------------------------------------------------------------------
    @contextlib.contextmanager
    def _threads(self) -> Iterator[None]:
        """The config's torch threads while the supernets work (as the executor's runs)."""
        import torch

        from mbnas.training.cpus import default_threads

        before = torch.get_num_threads()
        try:
            torch.set_num_threads(self.config.threads or default_threads())
            yield
        finally:
            torch.set_num_threads(before)

    def _load(self) -> list[Any]:
        """The trained supernet of every fold, with its data (trained or resumed now)."""
        if self._nets is not None:
            return self._nets
        from mbnas.scoring.supernet_train import (
            recalibration_batches,
            supernet_key,
            train_supernet,
        )
        from mbnas.training.device import select_device
        from mbnas.training.runs import fold_data
        from mbnas.training.train import _DeviceData

        protocol, seed = self.config.protocol, self.config.protocol.seeds[0]
        device = select_device(self.ctx.device)
        trained = None
        key = ""
        nets = []
        for fold in range(protocol.folds):
            train, val = fold_data(self.ctx.data, self.ctx.folds, fold)
            with self._threads():
                trained = train_supernet(self.space, train, protocol, seed, device,
                                         self._path(fold), self.max_kernel)
            key = supernet_key(protocol, self.space, seed, trained.net.max_kernel)
            nets.append((trained, recalibration_batches(train, protocol, device), val,
                         _DeviceData(val, device, False), device))
        self.summary.update({
            "key": key, "folds": protocol.folds, "epochs": trained.epochs if trained else 0,
            "training_seconds": round(sum(n[0].seconds for n in nets), 3),
            "parameters": sum(p.numel() for p in nets[0][0].net.parameters()),
        })
        self._nets = nets
        return nets

    def _path(self, fold: int) -> Path:
        """The checkpoint of fold ``fold``'s supernet, under the supernet's own key."""
        from mbnas.scoring.supernet import largest_kernel
        from mbnas.scoring.supernet_train import supernet_key

        protocol = self.config.protocol
        key = supernet_key(protocol, self.space, protocol.seeds[0],
                           largest_kernel(self.space, self.max_kernel))
        return self.folder / "supernet" / key / f"fold{fold}.pt"

    # -- the Scorer protocol ------------------------------------------------------------------
    def score(self, strategy: Any, batch: Sequence[Any]) -> list[SupernetResult]:
        from mbnas.scoring.supernet_train import inherited_score

        results = []
        todo = [a for a in batch if a.key not in self.scores]
        if todo:
            nets = self._load()
            t0 = time.perf_counter()
            with self._threads():
                for arch in todo:
                    fold_scores = [inherited_score(t.net, arch, batches, val,
                                                   self.config.protocol, device, va)
                                   for t, batches, val, va, device in nets]
                    self.scores[arch.key] = (math.nan if any(map(math.isnan, fold_scores))
                                             else sum(fold_scores) / len(fold_scores))
            self.summary["scoring_seconds"] = round(
                self.summary.get("scoring_seconds", 0.0) + time.perf_counter() - t0, 3)
            self.summary["scored"] = self.summary.get("scored", 0) + len(todo)
        for arch in batch:
            results.append(SupernetResult(arch.to_dict(), arch.key, self.scores[arch.key]))
        return results

    def state_dict(self) -> dict[str, Any] | None:
        return {"scores": {k: None if math.isnan(v) else v for k, v in self.scores.items()},
                "summary": self.summary}

    def load_state_dict(self, state: dict[str, Any] | None) -> None:
        state = state or {}
        self.scores = {k: math.nan if v is None else float(v)
                       for k, v in (state.get("scores") or {}).items()}
        self.summary = dict(state.get("summary") or {})

    def annotate_log(self, lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out = []
        for line in lines:
            extra: dict[str, Any] = {"score_source": "supernet"}
            standalone = self.standalone.get(line["arch_key"])
            if standalone is not None:
                extra["standalone_score"] = None if math.isnan(standalone) else standalone
            out.append({**line, **extra})
        return out

    def finish(self, strategy: Any) -> None:
        """Train the best ``retrain_top`` networks by supernet score stand-alone."""
        seen: dict[str, Any] = {}
        for e in sorted((e for e in strategy.history if e.score is not None),
                        key=lambda e: (-e.score, e.index)):
            seen.setdefault(e.key, e.genotype)
        top = list(seen.values())[:self.config.retrain_top]
        if not top:
            return
        results = self.evaluator.evaluate_many(top)
        self.standalone = {r.arch_key: r.score for r in results}
        self.summary.update({
            "retrained": [{"arch_key": r.arch_key, "supernet_score": self.scores[r.arch_key],
                           "standalone_score": None if math.isnan(r.score) else r.score}
                          for r in results],
            "retrain_seconds": round(sum(r.seconds for r in results), 3),
            "kendall_tau_top": _tau([self.scores[r.arch_key] for r in results],
                                    [r.score for r in results]),
        })
        atomic_write_json(self.folder / SUMMARY, {"scoring": "supernet", **self.summary})

    def best(self, strategy: Any) -> tuple[tuple[Any, float], dict[str, Any]] | None:
        """best.json's network: by stand-alone score once retrained, else by supernet's."""
        finite = {k: v for k, v in self.standalone.items() if not math.isnan(v)}
        if finite:
            key = max(finite, key=lambda k: (finite[k], -_first_index(strategy, k)))
            genotype = next(e.genotype for e in strategy.history if e.key == key)
            return (genotype, finite[key]), {"score_source": "standalone",
                                             "supernet_score": self.scores.get(key)}
        if strategy.best is None:
            return None
        return strategy.best, {"score_source": "supernet"}


def phase_kernel(strategy: str) -> int | None:
    """The largest kernel a strategy with a kernel phase searches (Bilevel-NAS's second
    phase: the paper's kernels on a topology whose space fixes them), else None."""
    from mbnas.spaces.registry import PAPER_KERNELS
    from mbnas.strategies import strategy_definition

    return max(PAPER_KERNELS) if strategy_definition(strategy).kernel_phase else None


def _first_index(strategy: Any, key: str) -> int:
    return next(e.index for e in strategy.history if e.key == key)


def _tau(a: list[float], b: list[float]) -> float | None:
    """Kendall's tau of two score lists (None below three finite pairs)."""
    pairs = [(x, y) for x, y in zip(a, b, strict=True) if not (math.isnan(x) or math.isnan(y))]
    if len(pairs) < 3:
        return None
    from scipy.stats import kendalltau

    tau = kendalltau(*zip(*pairs, strict=True)).statistic
    return None if math.isnan(tau) else round(float(tau), 4)


@register_scoring("supernet", about="score every network with the weights it inherits from "
                  "one weight-sharing supernet per fold (BN recalibrated), then train the "
                  "best --retrain-top K stand-alone (docs/one_shot.md)")
def _make_supernet(context: ScoringContext) -> SupernetScorer:
    return SupernetScorer(context)
