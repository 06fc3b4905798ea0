"""Table 1 on a hand-computed example (see conftest.table_evals)."""

from __future__ import annotations

import csv
import dataclasses
import json
import math

import numpy as np
import pytest

from mbnas.metrics import METRICS, metric_definitions
from mbnas.reporting.report_data import CaseScore, ModelCost, ModelEvaluation, ReportError
from mbnas.reporting.table import STD_DDOF, build_table, seed_mean_std, write_table


def _row(table, model):
    row = next(r for r in table.rows if r.model == model)
    return {c.key: cell for c, cell in zip(table.columns, row.cells, strict=True)}


def test_std_is_sample_std_over_per_seed_scores(table_evals):
    assert STD_DDOF == 1
    mean, std = seed_mean_std(table_evals[0].cases, lambda c: c.dice)
    # per-seed scores: seed 0 (0.8 + 0.9 + 0.7) / 3 = 0.8, seed 1 (0.6 + 0.8 + 0.7) / 3 = 0.7
    assert mean == pytest.approx(0.75)  # all 6 cases
    assert std == pytest.approx(math.sqrt(0.005))  # sqrt(2 * 0.05**2 / (2 - 1))
    assert std != pytest.approx(0.05)  # the population std (ddof=0) is not used
    assert std == pytest.approx(np.std([0.8, 0.7], ddof=STD_DDOF))


def test_mean_pools_cases_not_fold_means(table_evals):
    # fold means of seed 0 are 0.85 and 0.7; pooling the cases gives 0.8, not 0.775
    cases = [c for c in table_evals[0].cases if c.seed == 0]
    assert seed_mean_std(cases, lambda c: c.dice) == (pytest.approx(0.8), None)


def test_table_values_and_bold(table_evals):
    t = build_table(table_evals)
    mb, un = _row(t, "MB-NAS"), _row(t, "U-Net")
    assert mb["dsc"].text == "0.7500 ± 0.071" and mb["dsc"].best
    assert un["dsc"].text == "0.7000 ± 0.000" and not un["dsc"].best
    assert mb["hd95"].text == "3.000 ± 1.414" and mb["hd95"].best  # sqrt(2): lower is better
    assert un["hd95"].text == "5.000 ± 0.000"
    assert mb["sd"].text == "0.5000 ± 0.000" and not mb["sd"].best
    assert un["sd"].text == "0.7000 ± 0.141" and un["sd"].best
    assert (mb["mmac"].text, un["mmac"].text) == ("644", "302") and un["mmac"].best
    assert (mb["mmac_32"].text, un["mmac_32"].text) == ("40.3", "18.9") and un["mmac_32"].best
    assert (mb["params"].text, un["params"].text) == ("3.04", "18.4") and mb["params"].best
    assert not mb["mmac"].best and not un["params"].best
    headers = [c.header for c in t.columns]
    metric_headers = [d.column_header(tolerance_mm=2.0) for d in metric_definitions()]
    assert headers == [*metric_headers, "MMAC (128x128)", "MMAC (32x32)", "#Params (x10^6)"]
    assert "sample standard deviation (ddof=1)" in t.note and "single-seed" in t.note


def test_per_class_rows(table_evals):
    t = build_table(table_evals)
    rows = {(m, k): cells for m, k, cells in t.class_rows}
    assert set(rows) == {("MB-NAS", "PZ"), ("MB-NAS", "TZ"), ("U-Net", "PZ"), ("U-Net", "TZ")}
    assert rows[("MB-NAS", "PZ")][0].text == "0.8500 ± 0.071"  # every case's Dice + 0.1
    assert rows[("U-Net", "TZ")][0].text == "0.6000 ± 0.000"


def test_ties_are_all_bold_and_single_seed_has_no_std():
    evals = [ModelEvaluation(n, "searched", cases=(CaseScore(n, 0, 0, "a", {"dice": d}),))
             for n, d in (("A", 0.91234), ("B", 0.91231), ("C", 0.5))]
    cells = [_row(build_table(evals), n)["dsc"] for n in "ABC"]
    assert [c.best for c in cells] == [True, True, False]  # both print as 0.9123
    assert cells[0].text == "0.9123" and cells[0].std is None  # one seed: the plain value
    assert _row(build_table(evals), "A")["params"].text == "n/a"


def test_mixed_mac_input_sizes_are_named_per_cell():
    evals = [ModelEvaluation(n, "baseline", cost=ModelCost(params=1, macs=m, macs_input_size=sz))
             for n, m, sz in (("A", 2e6, (64, 64)), ("B", 150e6, (128, 128)))]
    t = build_table(evals)
    assert {c.key: c.header for c in t.columns}["mmac"] == "MMAC (input size per cell)"
    assert [_row(t, n)["mmac"].text for n in "AB"] == ["2 @64x64", "150 @128x128"]
    assert _row(t, "A")["mmac"].best and _row(t, "A")["dsc"].text == "n/a"


def test_write_table_files(table_evals, tmp_path):
    paths = write_table(table_evals, tmp_path / "out")
    assert [p.name for p in paths] == ["table1.md", "table1.csv", "table1.json"]
    md = paths[0].read_text()
    assert "| Model | DSC | HD95 (mm) |" in md
    assert "| MB-NAS | **0.7500 ± 0.071** | **3.000 ± 1.414** |" in md
    assert "Per class" in md and "sample standard deviation" in md
    rows = list(csv.DictReader(paths[1].open()))
    assert [r["model"] for r in rows] == ["MB-NAS", "U-Net"]
    assert float(rows[0]["dsc_std"]) == pytest.approx(math.sqrt(0.005))
    assert float(rows[1]["params"]) == pytest.approx(18.4)
    assert rows[0]["n_seeds"] == "2" and rows[0]["n_cases"] == "6"
    data = json.loads(paths[2].read_text())
    assert data["std_ddof"] == 1
    assert data["rows"][0]["cells"]["dsc"]["best"] is True
    assert data["rows"][1]["cells"]["sd"]["mean"] == pytest.approx(0.7)


def test_bad_input(table_evals):
    with pytest.raises(ReportError, match="no model evaluations"):
        build_table([])
    with pytest.raises(ReportError, match="repeated: \\['MB-NAS'\\]"):
        build_table([table_evals[0], table_evals[0]])


def test_paper_mac_column_only_when_training_size_is_not_32(table_evals):
    headers = [c.header for c in build_table(table_evals).columns]
    assert headers.count("MMAC (32x32)") == 1 and "MMAC (128x128)" in headers
    at_32 = [dataclasses.replace(e, cost=dataclasses.replace(e.cost, macs_input_size=(32, 32)))
             for e in table_evals]
    headers = [c.header for c in build_table(at_32).columns]
    assert headers.count("MMAC (32x32)") == 1


def test_every_registered_metric_is_a_column_with_its_registered_header(table_evals):
    # ASSD is not in the hand-made fixture; cases that measured it show it like the rest
    assd = METRICS.get("assd")
    evals = [dataclasses.replace(e, cases=tuple(
        dataclasses.replace(c, values={**c.values, "assd": 1.0 + c.seed},
                            per_class={k: {**v, "assd": 2.0} for k, v in c.per_class.items()})
        for c in e.cases)) for e in table_evals]
    t = build_table(evals, tolerance_mm=1.5)
    column = next(c for c in t.columns if c.key == assd.column)
    assert column.header == assd.column_header(tolerance_mm=1.5)
    assert column.higher_is_better is assd.higher_is_better
    cell = _row(t, "MB-NAS")[assd.column]
    assert cell.text == f"{1.5:.{assd.decimals}f} ± 0.707"  # seeds 0 and 1: 1.0 and 2.0
    assert all(_row(t, m)[assd.column].best for m in ("MB-NAS", "U-Net"))  # a tie
    j = [c.key for c in t.class_columns].index(assd.column)
    assert all(cells[j].mean == pytest.approx(2.0) for _, _, cells in t.class_rows)
    assert f"| {assd.column_header(tolerance_mm=1.5)} |" in t.to_markdown()
    assert assd.label in t.note
    for d in metric_definitions():  # the header of every metric is its registered one
        assert d.column_header(tolerance_mm=1.5) in [c.header for c in t.columns]


def test_paper_comparable_table_gives_mmac_in_the_paper_convention(table_evals):
    evals = [dataclasses.replace(e, paper_cases=e.cases,
                                 cost=dataclasses.replace(e.cost, macs_paper=m))
             for e, m in zip(table_evals, (43.1e6, 19.0e6), strict=True)]
    paper = build_table(evals, paper=True)
    headers = [c.header for c in paper.columns]
    assert [h for h in headers if "MMAC" in h] == ["MMAC (32x32, paper's convention)"]
    assert [_row(paper, n)["mmac_paper"].text for n in ("MB-NAS", "U-Net")] == ["43.1", "19"]
    assert "thop 0.0.31" in paper.note and "true counts" in paper.note
    default = build_table(evals)
    assert [c.key for c in default.columns if "mmac" in c.key] == ["mmac", "mmac_32"]
    assert "true counts" in default.note and "paper's convention (thop 0.0.31)" in default.note
    assert ModelCost.from_dict(evals[0].cost.to_dict()).macs_paper == 43.1e6


def _paper_evals(both_empty: int, slices: int = 10) -> list[ModelEvaluation]:
    case = CaseScore("A", 0, 0, "a", {"dice": 0.3, "hd95": 1.0, "surface_dice": 0.5}, {}, slices,
                     both_empty)
    return [ModelEvaluation("A", "searched", cases=(case,), paper_cases=(case,))]


def test_paper_table_warns_when_most_slices_are_empty_in_both():
    warned = build_table(_paper_evals(8), paper=True)
    assert warned.note.startswith("Warning: 80% of the scored slices are empty in both")
    assert "Warning" not in build_table(_paper_evals(5), paper=True).note  # half: no warning
    assert "Warning" not in build_table(_paper_evals(8)).note  # the 3D table has no slices
    case = _paper_evals(8)[0].paper_cases[0]
    assert CaseScore.from_dict(case.to_dict()) == case


def test_surface_dice_header_and_note_never_say_sd(table_evals):
    t = build_table(table_evals, tolerance_mm=1.0)
    assert "SurfDice@1mm" in [c.header for c in t.columns]
    assert "SD" not in [c.header for c in t.columns] and "SD:" not in t.note


def test_p_values_print_alike_in_every_table():
    from mbnas.reporting import domain_shift, html, nnunet
    from mbnas.reporting.numbers import p_text

    assert p_text(1.0) == "1.0000" and p_text(0.00001) == "< 0.0001" and p_text(None) == "n/a"
    assert html._p(1.0) == p_text(1.0)
    said = nnunet.describe([{"ok": True, "model": "a", "other": "b", "mean_difference": 0.0,
                             "n_cases": 3, "p_value": 1.0}])
    assert said.endswith(f"p = {p_text(1.0)}")
    page = domain_shift.domain_shift_html({
        "columns": ["site B"], "reference": "site A",
        "metrics": ["dice"],
        "models": {"m": {"references": {"dice": 0.5}, "columns": {"site B": {
            "cases": 2, "metrics": {"dice": {"value": 0.4, "drop": 0.1}}}}}},
        "tests": {"site B": {"reference_model": "m", "comparisons": {
            "n": {"n": 3, "p": 1.0, "p_holm": 1.0}}}}})
    assert f"<td>{p_text(1.0)}</td>" in page
