"""Suspect results are pointed out: constant predictions, identical scores of other models."""

from __future__ import annotations

import torch

from mbnas.reporting.report_data import CaseScore, ModelEvaluation
from mbnas.reporting.suspect import constant_search_notes, identical_scores, suspect_notes
from mbnas.training.train import constant_class


def _model(name: str, dice: list[float]) -> ModelEvaluation:
    return ModelEvaluation(name, "searched", cases=tuple(
        CaseScore(name, 0, f, f"c{f}", {"dice": d, "hd95": 1.0, "surface_dice": 0.5})
        for f, d in enumerate(dice)))


def test_a_constant_prediction_is_recognised() -> None:
    assert constant_class(torch.ones(2, 4, 4, dtype=torch.long)) == 1
    assert constant_class(torch.zeros(2, 4, 4, dtype=torch.long)) == 0
    mixed = torch.zeros(2, 4, 4, dtype=torch.long)
    mixed[0, 0, 0] = 1
    assert constant_class(mixed) is None


def test_identical_scores_of_different_models_are_pointed_out() -> None:
    evals = [_model("A", [0.81, 0.4]), _model("B", [0.81, 0.4]), _model("C", [0.81, 0.5])]
    assert identical_scores(evals) == [["A", "B"]]
    notes = suspect_notes(evals, {"A": ("fold 0 seed 0",), "C": ()})
    assert len(notes) == 2
    assert notes[0].startswith("A: 1 run(s) predicted one class on every validation pixel")
    assert "A, B have identical per-case scores" in notes[1]
    assert suspect_notes([_model("A", [0.8]), _model("B", [0.7])], {}) == []


def test_a_search_scored_on_constant_predictions_is_pointed_out() -> None:
    log = [{"index": 0, "constant_runs": 2}, {"index": 1, "constant_runs": 0}, {"index": 2}]
    (note,) = constant_search_notes([("MB-NAS (run_a)", log), ("run_b", log[1:])])
    assert note.startswith("search MB-NAS (run_a): 1 of 3 evaluation(s) had runs that "
                           "predicted one class")
    assert constant_search_notes([("run_b", log[1:])]) == []


def test_a_fold_scoring_zero_for_every_network_is_flagged() -> None:
    """Issue 35 item 6: a fold whose validation scores exactly 0.0 for every network
    adds a constant to every score; it is flagged, and only it."""
    from mbnas.reporting.suspect import zero_fold_notes

    evals = [_model("A", [0.0, 0.81, 0.0]), _model("B", [0.0, 0.4, 0.3])]
    (note,) = [n for n in suspect_notes(evals, {}) if "fold" in n]
    assert note.startswith("fold 0 scores Dice exactly 0.0 for every model (A, B)")
    assert "c0" in note  # its validation case
    # search runs: (network, fold, score); one network alone is no pattern
    runs = [("k1", 0, 0.0), ("k1", 1, 0.5), ("k2", 0, 0.0), ("k2", 1, 0.0), ("k3", 1, 0.2),
            ("k3", 0, 0.0)]
    (note,) = zero_fold_notes("search MB-NAS seed 0", runs)
    assert note.startswith("search MB-NAS seed 0: fold 0 scores Dice exactly 0.0 for every "
                           "network (3 networks")
    assert zero_fold_notes("s", [("k1", 0, 0.0), ("k1", 1, 0.3)]) == []
    assert zero_fold_notes("s", [("k1", 0, 0.0), ("k2", 0, 1e-6)]) == []
