"""docs/extending.md ("A metric"), followed: a toy metric registered from a module of its own
passes the shared checks and shows up in Table 1 and the figures with no other edit."""

from __future__ import annotations

import importlib
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from mbnas.metrics import METRICS, MetricDefinition
from mbnas.reporting.figures import measured_metrics, plot_case_boxplots
from mbnas.reporting.report_data import CaseScore, ModelEvaluation
from mbnas.reporting.table import build_table
from mbnas.testing import check_metric

TOY = '''
"""Jaccard index, registered as the recipe says."""

import numpy as np

from mbnas.metrics.registry import register_metric


@register_metric("toy_jaccard", label="Jaccard", header="IoU", unit="",
                 higher_is_better=True, decimals=3, both_empty=1.0, one_empty=0.0)
def jaccard(pred, ref, spacing):
    return float(np.logical_and(pred, ref).sum() / np.logical_or(pred, ref).sum())
'''


@pytest.fixture
def toy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[MetricDefinition]:
    (tmp_path / "toy_metric_plugin.py").write_text(textwrap.dedent(TOY))
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.import_module("toy_metric_plugin")
    try:
        yield METRICS.get("toy_jaccard")
    finally:
        METRICS.unregister("toy_jaccard")
        sys.modules.pop("toy_metric_plugin", None)


def test_the_toy_passes_the_shared_checks(toy: MetricDefinition) -> None:
    check_metric(toy.name)  # the kit a plugin metric runs (mbnas.testing)


def test_the_toy_is_a_table_column_and_a_figure(toy: MetricDefinition, tmp_path: Path) -> None:
    cases = tuple(CaseScore("M", seed, 0, "c", {"dice": 0.8, "toy_jaccard": 0.6 + seed / 10})
                  for seed in (0, 1))
    evals = [ModelEvaluation("M", "searched", cases=cases)]
    table = build_table(evals)
    cells = {c.key: cell for c, cell in zip(table.columns, table.rows[0].cells, strict=True)}
    assert "| IoU |" in table.to_markdown()
    assert cells["toy_jaccard"].text == "0.650 ± 0.071"
    assert "toy_jaccard" in measured_metrics(evals)
    names = {p.name for p in plot_case_boxplots(evals, tmp_path)}
    assert "boxplot_toy_jaccard.png" in names
