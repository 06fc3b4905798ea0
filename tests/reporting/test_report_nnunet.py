"""Rows trained by nnU-Net: reading its validation summary.json files, per-case tests."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from mbnas.metrics import DICE, metric_definitions
from mbnas.reporting.nnunet import case_comparisons, read_nnunet_results
from mbnas.reporting.report_data import ReportError
from mbnas.reporting.table import build_table


def write_nnunet_results(root: Path, dice: dict[str, dict[str, float]], folds: int = 2) -> Path:
    """nnU-Net's results layout with summary.json files in its format.

    ``dice``: configuration -> case id -> Dice (NaN: reference and prediction empty).
    """
    for config, cases in dice.items():
        ids = sorted(cases)
        for f in range(folds):
            fold = root / f"nnUNetTrainer__nnUNetPlans__{config}" / f"fold_{f}" / "validation"
            fold.mkdir(parents=True)
            entries = []
            for case in ids[f::folds]:
                empty = math.isnan(cases[case])
                entries.append({
                    "metrics": {"1": {"Dice": cases[case], "n_ref": 0 if empty else 50,
                                      "n_pred": 0 if empty else 48}},
                    "prediction_file": str(fold / f"{case}.nii.gz"),
                    "reference_file": f"/pre/gt_segmentations/{case}.nii.gz"})
            (fold / "summary.json").write_text(json.dumps({"metric_per_case": entries}))
    return root


def test_rows_hold_every_validation_case_with_the_empty_mask_policy(tmp_path):
    default = {f"case_{i}": 0.7 + 0.01 * i for i in range(6)}
    default["case_5"] = math.nan  # both empty: nnU-Net writes NaN, mbnas scores 1
    mbnas = {f"case_{i}": 0.75 + 0.02 * i for i in range(6)}
    results = write_nnunet_results(tmp_path / "res", {"2d": default, "2d_mbnas": mbnas})
    rows = read_nnunet_results(f"{results}:Spleen")
    by_config = {r.architecture["configuration"]: r for r in rows}
    assert by_config["2d"].name == "Spleen nnU-Net 2d (trained by nnU-Net)"
    assert by_config["2d_mbnas"].kind == "searched"
    got = {c.case_id: c.dice for c in by_config["2d"].cases}
    assert got == {**default, "case_5": 1.0}
    assert {c.fold for c in by_config["2d_mbnas"].cases} == {0, 1}
    (test,) = case_comparisons(rows, None)
    x = np.array([mbnas[k] for k in sorted(mbnas)])
    y = np.array([got[k] for k in sorted(mbnas)])
    assert test["n_cases"] == 6 and test["p_value"] == pytest.approx(stats.wilcoxon(x - y).pvalue)
    assert test["mean_difference"] == pytest.approx(float(np.mean(x - y)))


def test_a_folder_without_summaries_is_refused(tmp_path):
    (tmp_path / "nnUNetTrainer__nnUNetPlans__2d" / "fold_0").mkdir(parents=True)
    with pytest.raises(ReportError, match="summary.json"):
        read_nnunet_results(str(tmp_path))


def test_a_broken_summary_is_refused(tmp_path):
    fold = tmp_path / "nnUNetTrainer__nnUNetPlans__2d" / "fold_0" / "validation"
    fold.mkdir(parents=True)
    (fold / "summary.json").write_text("{}")
    with pytest.raises(ReportError, match="not an nnU-Net validation summary.json"):
        read_nnunet_results(str(tmp_path))


def test_rows_measure_dice_only_and_the_table_says_so(tmp_path):
    results = write_nnunet_results(tmp_path / "res", {"2d": {"case_0": 0.8, "case_1": 0.6}})
    (row,) = read_nnunet_results(str(results))
    assert all(set(c.values) == {DICE} for c in row.cases)  # the rest: not measured
    table = build_table([row])
    cells = {c.key: cell for c, cell in zip(table.columns, table.rows[0].cells, strict=True)}
    for d in metric_definitions():
        assert (cells[d.column].text == "n/a") == (d.name != DICE)
