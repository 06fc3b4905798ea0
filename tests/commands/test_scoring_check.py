"""The shared check of scoring methods (mbnas.testing.scoring) on `train` and a recipe."""

from __future__ import annotations

from pathlib import Path

import pytest

from mbnas.scoring.registry import SCORINGS, scoring_names
from mbnas.testing.scoring import check_scoring


def test_train_passes_the_scoring_check(tmp_path: Path) -> None:
    log = check_scoring("train", tmp_path)
    assert all(0 <= e["score"] <= 1 for e in log)  # Dice: the runs trained


def test_scoring_recipe_of_extending_md_passes_the_scoring_check(plugin, tmp_path: Path
                                                                  ) -> None:
    plugin.recipe("A scoring method", SCORINGS)
    (name,) = (n for n in scoring_names() if n not in BUILT_IN)
    log = check_scoring(name, tmp_path)
    assert len({e["score"] for e in log}) > 1  # different sizes, different scores


def test_the_check_catches_a_method_that_scores_at_random(tmp_path: Path) -> None:
    import random

    from mbnas.scoring.registry import ScoringContext

    class Dice:  # another score each time it is asked: not reproducible
        def __init__(self, context: ScoringContext) -> None:
            pass

        def score(self, strategy, batch):  # noqa: ANN001, ANN201
            from types import SimpleNamespace

            return [SimpleNamespace(arch_key=a.key, score=random.random(), runs=(),
                                    n_trained=0) for a in batch]

        def state_dict(self):  # noqa: ANN201
            return None

        def load_state_dict(self, state) -> None:  # noqa: ANN001
            pass

        def annotate_log(self, lines):  # noqa: ANN001, ANN201
            return lines

        def finish(self, strategy) -> None:  # noqa: ANN001
            pass

    with pytest.raises(AssertionError, match="the same seed gave other scores"):
        check_scoring(Dice, tmp_path)
    assert set(scoring_names()) == set(BUILT_IN)  # the check's wrapper is gone


BUILT_IN = scoring_names()
