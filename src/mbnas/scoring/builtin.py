"""The built-in scoring method ``train``: the paper's cross-validated training.

Each architecture of a batch is trained on every fold x seed of the search protocol
(:class:`~mbnas.scoring.train.Evaluator`); ``--race`` stops a candidate once it cannot
beat the current one (:mod:`mbnas.scoring.race`), and ``--fidelity`` screens a batch at
cheaper rungs first (:mod:`mbnas.scoring.fidelity_search`). Its checkpoint is the
fidelity screen's verdicts, under the key ``fidelity`` as before the scoring registry.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from mbnas.scoring.registry import DEFAULT_SCORING, ScoringContext, register_scoring

if TYPE_CHECKING:
    from mbnas.scoring.train import EvaluationResult


class TrainScorer:
    """Scores by training: plain, raced, or screened by fidelity rungs first."""

    def __init__(self, context: ScoringContext) -> None:
        config = context.config
        self.evaluator = context.evaluator
        self.race = bool(config.race)
        self.fidelity = None
        if config.fidelity:
            from mbnas.scoring.fidelity_search import FidelitySearch

            self.fidelity = FidelitySearch(config.fidelity, self.evaluator, context.cost,
                                           self.race)

    def score(self, strategy: Any, batch: Sequence[Any]) -> list[EvaluationResult]:
        if self.fidelity is not None:
            return self.fidelity.evaluate(strategy, batch)
        if self.race:
            from mbnas.scoring.race import race_many, score_to_beat

            return race_many(self.evaluator, batch, score_to_beat(strategy))
        return self.evaluator.evaluate_many(batch)

    def state_dict(self) -> dict[str, Any] | None:
        return None if self.fidelity is None else self.fidelity.state_dict()

    def load_state_dict(self, state: dict[str, Any] | None) -> None:
        if self.fidelity is not None:
            self.fidelity.load_state_dict(state)

    def annotate_log(self, lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return lines if self.fidelity is None else self.fidelity.annotate_log(lines)

    def finish(self, strategy: Any) -> None:
        return None


@register_scoring(DEFAULT_SCORING, about="train each network on folds x seeds of the search "
                  "protocol (the paper); with --race and --fidelity as options")
def _make_train(context: ScoringContext) -> TrainScorer:
    return TrainScorer(context)
