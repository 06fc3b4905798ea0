"""The report data model: JSON round-trip, derived run scores, clear errors."""

from __future__ import annotations

import json
import math

import pytest

from mbnas.errors import MbnasError
from mbnas.metrics import METRICS
from mbnas.reporting.report_data import CaseScore, ModelCost, ModelEvaluation, ReportError
from mbnas.reporting.table import build_table


def test_json_round_trip(table_evals):
    for e in table_evals:
        back = ModelEvaluation.from_dict(json.loads(json.dumps(e.to_dict())))
        assert back == e


def test_run_scores_round_trip_and_preferred_over_cases(table_evals):
    e = ModelEvaluation("X", "searched", run_scores={(0, 1): 0.5, (1, 0): 0.25},
                        cases=(CaseScore("X", 0, 1, "a", {"dice": 0.9, "hd95": 1.0}),))
    back = ModelEvaluation.from_dict(json.loads(json.dumps(e.to_dict())))
    assert back.run_scores == {(0, 1): 0.5, (1, 0): 0.25}
    assert back.paired_dice() == {(0, 1): 0.5, (1, 0): 0.25}


def test_paired_dice_from_cases_is_mean_per_run(table_evals):
    runs = table_evals[0].paired_dice()
    # seed 0: fold 0 has c1, c2 (0.8, 0.9); fold 1 has c3 (0.7)
    assert runs == pytest.approx({(0, 0): 0.85, (0, 1): 0.7, (1, 0): 0.7, (1, 1): 0.7})
    assert table_evals[0].mean_dice() == pytest.approx(0.75)


def test_cost_defaults_and_round_trip():
    assert ModelCost.from_dict(None) == ModelCost()
    c = ModelCost(params=10, macs=2.5e6, macs_input_size=(64, 32))
    assert ModelCost.from_dict(json.loads(json.dumps(c.to_dict()))) == c


def test_bad_input_raises_report_error():
    with pytest.raises(ReportError, match="kind 'other'"):
        ModelEvaluation("A", "other")
    with pytest.raises(ReportError, match="case score of model 'B'"):
        ModelEvaluation("A", "searched", cases=(CaseScore("B", 0, 0, "c", {"dice": 1.0}),))
    with pytest.raises(ReportError, match="hd95 must be a number"):
        CaseScore.from_dict({"model": "A", "seed": 0, "fold": 0, "case_id": "c",
                             "dice": 1.0, "hd95": "far", "surface_dice": 1.0})
    with pytest.raises(ReportError, match="metrics must be a mapping"):
        CaseScore.from_dict({"model": "A", "seed": 0, "fold": 0, "case_id": "c",
                             "metrics": [0.5]})
    with pytest.raises(ReportError, match="run_scores"):
        ModelEvaluation.from_dict({"name": "A", "kind": "searched", "run_scores": [{"seed": 0}]})
    assert issubclass(ReportError, MbnasError)


def test_an_old_evaluation_file_reads_newer_metrics_as_not_measured():
    # a case score as evaluation.json held it before metrics were registered definitions:
    # the paper's three metrics as top-level fields, nothing of metrics added since
    old = {"model": "A", "seed": 0, "fold": 0, "case_id": "c", "dice": 0.8, "hd95": 2.0,
           "surface_dice": 0.7, "per_class": {"spleen": {"dice": 0.8, "hd95": 2.0,
                                                         "surface_dice": 0.7}}}
    score = CaseScore.from_dict(old)
    assert score.values == {"dice": 0.8, "hd95": 2.0, "surface_dice": 0.7}
    newer = [n for n in METRICS.names() if n not in old]
    assert newer  # ASSD at least was registered after these files were written
    assert all(math.isnan(score.value(n)) for n in newer)
    # written back in the new layout and read again: the same, still without them
    assert CaseScore.from_dict(json.loads(json.dumps(score.to_dict()))) == score
    table = build_table([ModelEvaluation("A", "searched", cases=(score,))])
    cells = dict(zip((c.key for c in table.columns), table.rows[0].cells, strict=True))
    for n in newer:
        assert cells[METRICS.get(n).column].text == "n/a"
    assert cells[METRICS.get("dice").column].text.startswith("0.8000")
