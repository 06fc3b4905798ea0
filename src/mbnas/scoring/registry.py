"""Scoring methods registered by name: how a batch of architectures gets its scores.

The search loop (:mod:`mbnas.commands.search.run`) asks its strategy for a batch and
hands it to the scorer of the config's ``scoring`` (``--scoring``); the scores it returns
are what the strategy is told. ``train`` (:mod:`mbnas.scoring.builtin`) is the paper's:
each architecture trained on folds x seeds, with racing and multi-fidelity probing as
options. Another method (a weight-sharing supernet, a toy for tests) is one factory
registered here; strategies never know which method scored them.

A scorer keeps its own state for resume (:meth:`Scorer.state_dict`, saved in the search
checkpoint under its name) and may add fields to the search log and work after the
strategy has finished (:meth:`Scorer.finish`, e.g. retraining the best networks).
This module imports nothing heavy, so ``mbnas search --help`` lists the methods.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from mbnas.registry import Registry

__all__ = [
    "DEFAULT_SCORING",
    "SCORINGS",
    "Scorer",
    "ScoringContext",
    "ScoringDefinition",
    "make_scorer",
    "register_scoring",
    "scoring_names",
]

DEFAULT_SCORING = "train"


class Scored(Protocol):
    """What a scorer returns per architecture (:class:`~mbnas.scoring.train.EvaluationResult`
    is one): its score (NaN when it failed), key, runs and how many were trained now."""

    @property
    def score(self) -> float: ...

    @property
    def arch_key(self) -> str: ...

    @property
    def runs(self) -> Sequence[Any]: ...

    @property
    def n_trained(self) -> int: ...


class Scorer(Protocol):
    """Scores batches of architectures for one search; its state survives a resume."""

    def score(self, strategy: Any, batch: Sequence[Any]) -> Sequence[Scored]:
        """One result per architecture of ``batch``, in order (``strategy`` is read-only:
        racing reads the score to beat from it)."""
        ...

    def state_dict(self) -> dict[str, Any] | None:
        """What a resumed search needs to go on exactly (JSON); ``None``: nothing."""
        ...

    def load_state_dict(self, state: dict[str, Any] | None) -> None: ...

    def annotate_log(self, lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The search log's entries, with this method's own fields added."""
        ...

    def finish(self, strategy: Any) -> None:
        """Work after the strategy has stopped asking (before the last outputs)."""
        ...


@dataclass(frozen=True)
class ScoringContext:
    """Everything a scoring method may use for one search.

    ``evaluator`` trains stand-alone runs (folds x seeds of the search protocol) into the
    store; ``folder`` is the search's run folder (a method keeps its own files there);
    ``cost`` is the cost-aware part of the search or ``None``.
    """

    config: Any
    folder: Any
    store: Any
    evaluator: Any
    run_context: Any
    cost: Any = None
    hooks: Any = None


@dataclass(frozen=True)
class ScoringDefinition:
    """A registered scoring method: its factory and a line for ``--help``."""

    name: str
    make: Callable[[ScoringContext], Scorer]
    about: str = ""


SCORINGS: Registry[ScoringDefinition] = Registry(
    "scoring method", "how a batch of architectures gets its scores",
    builtins=("mbnas.scoring.builtin", "mbnas.scoring.supernet_scoring"))


def register_scoring(name: str, about: str = ""
                     ) -> Callable[[Callable[[ScoringContext], Scorer]],
                                   Callable[[ScoringContext], Scorer]]:
    """Register a factory ``make(context) -> Scorer`` under ``name``."""
    return SCORINGS.decorator(name, lambda make: ScoringDefinition(name, make, about))


def scoring_names() -> tuple[str, ...]:
    return SCORINGS.names()


def make_scorer(name: str, context: ScoringContext) -> Scorer:
    """The scorer ``name`` for one search (an unknown name lists the valid ones)."""
    return SCORINGS.get(name).make(context)
