"""Domain shift: how much each model loses away from the data it was trained on.

Built from values only (the evaluation's per-case scores, its sites and folds, and the
external sets' per-case scores). Per model and per registered metric that was measured
(:data:`~mbnas.metrics.registry.METRICS`; Dice first), side by side:

* the reference: the evaluation's cross-validated value (mean over its cases, each
  case's seeds averaged first). With case-level folds this is the in-domain score;
  with leave-site-out folds (``--folds site``) every case is scored from a held-out
  site, and the reference is then the mean over the held-out sites;
* each held-out site (leave-site-out folds only): the value on that site's cases;
* each external set (``evaluate --external``): the value on its cases, segmented by the
  model's ensemble;
* the drop: how much worse each of them is than the reference, in the metric's own
  direction (reference minus value for Dice, value minus reference for a distance), so a
  positive drop is always a loss.

Where the same cases were scored by several models (one held-out site, one external
set) each model is compared with the reference model on those cases by a Wilcoxon
signed-rank test on the per-case Dice, Holm-adjusted over the models of that set.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

import numpy as np

from mbnas.metrics.registry import DICE, METRICS
from mbnas.reporting.numbers import p_text
from mbnas.reporting.report_data import ModelEvaluation
from mbnas.reporting.stats import MIN_PAIRS, holm


def case_means(model: ModelEvaluation, metric: str = DICE) -> dict[str, float]:
    """Case id -> ``metric`` averaged over the model's seeds (cases that measured it)."""
    by_case: dict[str, list[float]] = {}
    for c in model.cases:
        if metric in c.values:
            by_case.setdefault(c.case_id, []).append(c.value(metric))
    return {k: float(np.mean(v)) for k, v in by_case.items()}


def _mean(values: Sequence[float]) -> float:
    return float(np.mean(values)) if len(values) else math.nan


def held_out_sites(sites: Mapping[str, str | None], folds: Sequence[Sequence[str]]
                   ) -> list[str] | None:
    """The site each fold holds out, or None when the folds are not leave-site-out."""
    out = []
    for fold in folds:
        found = {sites.get(c) for c in fold}
        if len(found) != 1 or None in found:
            return None
        out.append(str(next(iter(found))))
    return out if len(set(out)) == len(out) and len(out) > 1 else None


def _paired(ref: Mapping[str, float], other: Mapping[str, float]) -> dict[str, Any]:
    from scipy import stats

    keys = sorted(set(ref) & set(other))
    if len(keys) < MIN_PAIRS:
        return {"n": len(keys), "p": None,
                "reason": f"{len(keys)} shared cases, at least {MIN_PAIRS} needed"}
    x, y = np.array([ref[k] for k in keys]), np.array([other[k] for k in keys])
    if np.all(x == y):
        return {"n": len(keys), "p": 1.0, "reason": "all paired differences are zero"}
    return {"n": len(keys), "p": float(stats.wilcoxon(x, y).pvalue),
            "mean_difference": float(np.mean(x - y))}


def domain_shift(evals: Sequence[ModelEvaluation], sites: Mapping[str, str | None],
                 folds: Sequence[Sequence[str]],
                 external: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Every figure of the domain-shift section (see the module docstring).

    Args:
        evals: The evaluated models.
        sites: Case id -> site of the evaluation's dataset.
        folds: The evaluation's validation case ids per fold.
        external: ``external.json``'s ``sets``: name -> {"models": {model: [case...]}}.
    """
    held = held_out_sites(sites, folds)
    metrics = [n for n in METRICS.names()
               if n == DICE or any(n in c.values for e in evals for c in e.cases)
               or any(n in r for s in external.values()
                      for rows in (s.get("models") or {}).values() for r in rows)]
    # metric -> column -> model -> case -> value
    per_model = {n: {e.name: case_means(e, n) for e in evals} for n in metrics}
    columns: dict[str, dict[str, dict[str, dict[str, float]]]] = {n: {} for n in metrics}
    names: list[str] = []
    if held is not None:
        for site in held:
            names.append(f"held-out site {site}")
            for n in metrics:
                columns[n][names[-1]] = {
                    m: {c: d for c, d in cases.items() if sites.get(c) == site}
                    for m, cases in per_model[n].items()}
    for name, s in external.items():
        names.append(f"external {name}")
        for n in metrics:
            columns[n][names[-1]] = {
                m: {r["case"]: float(r[n]) for r in rows if n in r}
                for m, rows in (s.get("models") or {}).items()}
    kind = ("held-out site" if held else "") + (" and " if held and external else "") + (
        "external set" if external else "")
    models = {}
    for e in evals:
        references: dict[str, Any] = {}
        row: dict[str, Any] = {}
        for n in metrics:
            ref_cases = per_model[n][e.name]
            if held is not None:
                reference = _mean([_mean([d for c, d in ref_cases.items()
                                          if sites.get(c) == s]) for s in held])
            else:
                reference = _mean(list(ref_cases.values()))
            references[n] = reference
            sign = 1.0 if METRICS.get(n).higher_is_better else -1.0
            for col in names:
                vals = list((columns[n][col].get(e.name) or {}).values())
                score = _mean(vals)
                cell = row.setdefault(col, {"cases": 0, "metrics": {}})
                cell["cases"] = max(cell["cases"], len(vals))
                cell["metrics"][n] = {"value": score, "drop": sign * (reference - score)}
        for cell in row.values():  # the headline number, as before
            cell["dice"], cell["drop"] = (cell["metrics"][DICE]["value"],
                                          cell["metrics"][DICE]["drop"])
        models[e.name] = {"reference": references[DICE], "references": references,
                          "columns": row}
    ref_model = _reference_model(evals)
    tests: dict[str, Any] = {}
    for col, by_model in columns[DICE].items():
        ref = by_model.get(ref_model, {}) if ref_model else {}
        comps = {m: _paired(ref, cases) for m, cases in by_model.items() if m != ref_model}
        adjusted = holm([c["p"] if c["p"] is not None else math.nan for c in comps.values()])
        for c, q in zip(comps.values(), adjusted, strict=True):
            c["p_holm"] = None if math.isnan(q) else q
        tests[col] = {"reference_model": ref_model, "comparisons": comps}
    return {"kind": kind or "none", "reference": (
        "mean over held-out sites (leave-site-out cross-validation)" if held
        else "in-domain cross-validation (case-level folds)"),
        "columns": names, "metrics": metrics, "models": models, "tests": tests}


def _reference_model(evals: Sequence[ModelEvaluation]) -> str | None:
    searched = [e for e in evals if e.kind == "searched" and not math.isnan(e.mean_dice())]
    pool = searched or [e for e in evals if not math.isnan(e.mean_dice())]
    return max(pool, key=lambda e: e.mean_dice()).name if pool else None


def card_value(d: Mapping[str, Any]) -> Any:
    """The card's external-validation row: which kind was done, and the drops."""
    if not d["columns"]:
        return ("none: neither leave-site-out folds (--folds site) nor external sets "
                "(evaluate --external)")
    return {"kind": d["kind"], "reference": d["reference"], **{
        m: "; ".join(f"{col}: Dice {v['dice']:.4f} (drop {v['drop']:+.4f})"
                     for col, v in row["columns"].items())
        for m, row in d["models"].items()}}


def _f(x: Any, fmt: str = ".4f") -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, fmt)


def domain_shift_html(d: Mapping[str, Any]) -> str:
    """The report page's domain-shift section."""
    if not d["columns"]:
        return f'<p class="na">{escape(card_value(d))}</p>'
    head = "".join(f"<th>{escape(c)}</th><th>drop</th>" for c in d["columns"])
    html = ""
    for n in d.get("metrics") or [DICE]:
        label = METRICS.get(n).axis_label if n in METRICS else n
        rows = ""
        for m, row in d["models"].items():
            rows += (f"<tr><td>{escape(m)}</td><td>{_f(row['references'][n])}</td>" + "".join(
                f"<td>{_f(v['metrics'][n]['value'])} ({v['cases']} cases)</td>"
                f"<td>{_f(v['metrics'][n]['drop'], '+.4f')}</td>"
                for v in row["columns"].values()) + "</tr>")
        html += (f"<p>{escape(label)} per model: reference = {escape(d['reference'])}; drop = "
                 "how much worse than the reference (positive: a loss).</p>"
                 f"<table><thead><tr><th>model</th><th>reference</th>{head}</tr></thead>"
                 f"<tbody>{rows}</tbody></table>")
    tests = ""
    for col, t in d["tests"].items():
        for m, c in t["comparisons"].items():
            tests += (f"<tr><td>{escape(col)}</td><td>{escape(str(t['reference_model']))} vs "
                      f"{escape(m)}</td><td>{c['n']}</td><td>{p_text(c.get('p'))}</td>"
                      f"<td>{p_text(c.get('p_holm'))}</td>"
                      f"<td>{escape(c.get('reason', ''))}</td></tr>")
    if tests:
        html += ("<p>Paired Wilcoxon signed-rank tests on the same cases (per-case Dice), "
                 "Holm-adjusted per column:</p><table><thead><tr><th>cases</th><th>models"
                 "</th><th>pairs</th><th>p</th><th>p (Holm)</th><th>note</th></tr></thead>"
                 f"<tbody>{tests}</tbody></table>")
    return html
