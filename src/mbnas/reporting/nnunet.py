"""The paper's section 3.3 in the report: networks trained by nnU-Net, read from its results.

``mbnas report ... --nnunet RESULTS_DIR[:LABEL]`` reads nnU-Net v2's results folder of
one dataset (``$nnUNet_results/DatasetXXX_Name``). For nnU-Net's default ``2d``
configuration and for ``2d_mbnas`` (what ``mbnas export nnunet`` adds), every trained
fold's ``fold_F/validation/summary.json`` gives the per-case validation Dice
(``metric_per_case``; the mean over the foreground labels). nnU-Net's summary has no
HD95 or Surface Dice, so those cells are empty. A case where reference and prediction
are both empty scores 1 (mbnas's empty-mask policy; nnU-Net writes NaN).

The rows are named "... (trained by nnU-Net)". Because nnU-Net's folds need not be
mbnas's, these rows take no part in the Friedman test or the run-level Wilcoxon tests;
instead :func:`case_comparisons` runs Wilcoxon signed-rank tests on the per-case Dice of
the cases both models validated (each case's Dice averaged over seeds), ``2d_mbnas``
against ``2d``, and the report's best searched network against each nnU-Net row.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from mbnas.metrics.registry import DICE
from mbnas.reporting.numbers import p_text
from mbnas.reporting.report_data import CaseScore, ModelEvaluation, ReportError

#: nnU-Net configuration -> (row name, kind).
CONFIGURATIONS = {"2d": ("nnU-Net 2d", "baseline"), "2d_mbnas": ("MB-NAS 2d_mbnas", "searched")}
MARK = "trained by nnU-Net"
MIN_CASES = 5


def _case_id(entry: dict[str, Any]) -> str:
    name = Path(str(entry.get("reference_file") or entry.get("prediction_file"))).name
    for ending in (".nii.gz", ".nii", ".nrrd", ".mha", ".png", ".tif"):
        if name.endswith(ending):
            return name[: -len(ending)]
    return name.split(".")[0]


def _case_dice(metrics: dict[str, Any]) -> float:
    scores = []
    for label in metrics.values():
        if label.get("n_ref") == 0 and label.get("n_pred") == 0:
            scores.append(1.0)
        else:
            scores.append(float(label["Dice"]))
    return float(np.mean(scores)) if scores else math.nan


def _read_summary(path: Path, model: str, fold: int) -> list[CaseScore]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        entries = data["metric_per_case"]
        # nnU-Net's summary has Dice only: every other metric reads as not measured.
        return [CaseScore(model, 0, fold, _case_id(e), {DICE: _case_dice(e["metrics"])})
                for e in entries]
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ReportError(f"{path}: not an nnU-Net validation summary.json "
                          f"({type(exc).__name__}: {exc})") from None


def read_nnunet_results(spec: str) -> list[ModelEvaluation]:
    """The ``2d`` and ``2d_mbnas`` rows of one nnU-Net results folder.

    Args:
        spec: ``RESULTS_DIR`` or ``RESULTS_DIR:LABEL``; the label prefixes the row names.

    Raises:
        ReportError: If the folder has no trained fold of either configuration, or a
            summary.json is unreadable.
    """
    folder, _, label = spec.rpartition(":") if not Path(spec).exists() else (spec, "", "")
    root = Path(folder)
    if not root.is_dir():
        raise ReportError(f"nnU-Net results folder {root} does not exist")
    rows = []
    for config, (name, kind) in CONFIGURATIONS.items():
        trainers = sorted(p for p in root.glob(f"*__*__{config}") if p.is_dir())
        for trainer in trainers:
            summaries = sorted(trainer.glob("fold_*/validation/summary.json"))
            if not summaries:
                continue
            many = len(trainers) > 1
            title = f"{label + ' ' if label else ''}{name}" \
                    f"{' ' + trainer.name.split('__')[0] if many else ''} ({MARK})"
            cases = [c for s in summaries
                     for c in _read_summary(s, title, int(s.parent.parent.name[5:]))]
            rows.append(ModelEvaluation(title, kind, {"kind": "nnunet", "configuration": config,
                                                      "trainer": trainer.name},
                                        tuple(cases), source_run=str(trainer)))
    if not rows:
        raise ReportError(f"{root}: no fold_*/validation/summary.json of the 2d or 2d_mbnas "
                          "configuration; train them with nnUNetv2_train first")
    return rows


def _per_case(model: ModelEvaluation) -> dict[str, float]:
    by_case: dict[str, list[float]] = {}
    for c in model.cases:
        by_case.setdefault(c.case_id, []).append(c.dice)
    return {k: float(np.mean(v)) for k, v in by_case.items()}


def compare_cases(a: ModelEvaluation, b: ModelEvaluation) -> dict[str, Any]:
    """Wilcoxon signed-rank test of the per-case Dice of two models on their shared cases."""
    x, y = _per_case(a), _per_case(b)
    shared = sorted(set(x) & set(y))
    out: dict[str, Any] = {"model": a.name, "other": b.name, "n_cases": len(shared)}
    if len(shared) < MIN_CASES:
        return {**out, "ok": False, "reason": f"not enough data: {len(shared)} shared "
                f"cases, at least {MIN_CASES} needed"}
    dx = np.array([x[k] for k in shared]) - np.array([y[k] for k in shared])
    out["mean_difference"] = float(dx.mean())
    if np.all(dx == 0):
        return {**out, "ok": True, "statistic": 0.0, "p_value": 1.0,
                "reason": "all paired differences are zero"}
    res = stats.wilcoxon(dx)
    return {**out, "ok": True, "statistic": float(res.statistic), "p_value": float(res.pvalue)}


def case_comparisons(nnunet: Sequence[ModelEvaluation], best: ModelEvaluation | None
                     ) -> list[dict[str, Any]]:
    """``2d_mbnas`` vs ``2d`` within each results folder, then the best searched vs each row."""
    out = []
    for mbnas_row in (r for r in nnunet if r.architecture.get("configuration") == "2d_mbnas"):
        for default in (r for r in nnunet if r.architecture.get("configuration") == "2d"
                        and Path(str(r.source_run)).parent
                        == Path(str(mbnas_row.source_run)).parent):
            out.append(compare_cases(mbnas_row, default))
    if best is not None:
        out += [compare_cases(best, r) for r in nnunet]
    return out


def describe(comparisons: Sequence[dict[str, Any]]) -> str:
    """One sentence per test, for the report page."""
    parts = []
    for c in comparisons:
        if c["ok"]:
            parts.append(f"{c['model']} vs {c['other']}: mean Dice difference "
                         f"{c['mean_difference']:+.4f} over {c['n_cases']} cases, Wilcoxon "
                         f"p = {p_text(c['p_value'])}")
        else:
            parts.append(f"{c['model']} vs {c['other']}: {c['reason']}")
    return "; ".join(parts)


__all__ = ["CONFIGURATIONS", "MARK", "case_comparisons", "compare_cases", "describe",
           "read_nnunet_results"]
