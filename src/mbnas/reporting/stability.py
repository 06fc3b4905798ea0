"""Search stability: do repeated searches (``mbnas search --repeats K``) agree?

Built from values only (the driver reads the run folders and the store):

* the spread of the K best scores (:func:`mbnas.reporting.card.stability`);
* the pairwise distance between the K best genotypes, per variable type: the fraction
  of nodes whose ``channels``, ``block``, ``kernel`` or ``skip`` differ (the variables
  their language's codec describes, :func:`mbnas.spaces.languages.describe`);
* how often each option was chosen per node across the K best genotypes, and the
  *agreement* per variable (node x variable type): the share of pairs of repeats whose
  best genotypes chose the same option there (1: every repeat agrees). Several groups
  (e.g. ``--strategy dnas`` and local search, each with ``--repeats``) are shown side by
  side, variable by variable (:func:`agreement_html`);
* the rank correlation (Spearman) of the scores of architectures that several repeats
  evaluated. The repeats share one store, so such an architecture has one score: its
  ranking is compared across folds instead (fold i vs fold j, over those
  architectures), which says whether a network that is good on one fold (held-out site,
  with ``--folds site``) is good on the others too.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

import numpy as np

from mbnas.reporting.card import stability
from mbnas.spaces.languages import describe

#: The variable types of the paper's genotypes: the columns when no genotype is readable.
VARIABLES = ("channels", "block", "kernel", "skip")

def _nodes(genotype: Mapping[str, Any]) -> list[Mapping[str, str]]:
    """The architecture's variables per node (or stage), as its codec describes them."""
    return list((describe(genotype) or {}).values())


def _variables(*groups: Sequence[Mapping[str, str]]) -> list[str]:
    """The variable types of the nodes, in order of first appearance."""
    return list(dict.fromkeys(v for nodes in groups for node in nodes for v in node))


def _columns(rows: Mapping[str, Mapping[str, Any]]) -> list[str]:
    return list(dict.fromkeys(v for row in rows.values() for v in row))


def variable_distances(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, float]:
    """Fraction of nodes whose variable differs, per variable type (0: the same)."""
    na, nb = _nodes(a), _nodes(b)
    n = max(len(na), len(nb))
    out = {}
    for var in _variables(na, nb) or VARIABLES:
        if n == 0:
            out[var] = math.nan
            continue
        missing: dict[str, Any] = {}  # a node only one genotype has
        differ = sum(1 for x, y in itertools.zip_longest(na, nb, fillvalue=missing)
                     if x.get(var) != y.get(var))
        out[var] = differ / n
    return out


def option_frequencies(genotypes: Sequence[Mapping[str, Any]]
                       ) -> dict[str, dict[str, dict[str, int]]]:
    """``{"node 1": {"block": {"dense": 2, ...}, ...}, ...}`` over the genotypes (the
    node or stage names and variables their codec describes)."""
    out: dict[str, dict[str, dict[str, int]]] = {}
    for g in genotypes:
        for group, node in (describe(g) or {}).items():
            per = out.setdefault(group, {})
            for var, value in node.items():
                per.setdefault(var, {})
                per[var][value] = per[var].get(value, 0) + 1
    return out


def variable_agreement(genotypes: Sequence[Mapping[str, Any]]
                       ) -> dict[str, dict[str, float | None]]:
    """``{"node 1": {"channels": 1.0, "block": 0.33, ...}, ...}``: per node (or stage, as
    the codec describes it) and variable, the share of pairs of genotypes that chose the
    same option (None: one genotype)."""
    described = [describe(g) or {} for g in genotypes]
    pairs = list(itertools.combinations(described, 2))
    out: dict[str, dict[str, float | None]] = {}
    for group in dict.fromkeys(k for d in described for k in d):
        variables = dict.fromkeys(v for d in described for v in d.get(group, {}))
        out[group] = {var: (sum(1 for a, b in pairs if a.get(group, {}).get(var)
                                == b.get(group, {}).get(var)) / len(pairs)) if pairs else None
                      for var in variables}
    return out


def _identical(genotypes: Sequence[Mapping[str, Any]]) -> float | None:
    """The share of pairs of genotypes that describe the same network."""
    pairs = list(itertools.combinations([describe(g) or {} for g in genotypes], 2))
    return sum(1 for a, b in pairs if a == b) / len(pairs) if pairs else None


def fold_rank_correlation(fold_scores: Mapping[str, Sequence[float]]) -> dict[str, Any]:
    """Spearman correlation of architecture scores between every pair of folds.

    Args:
        fold_scores: arch key -> score per fold (mean over seeds), same fold order.
    """
    from scipy.stats import spearmanr

    keys = [k for k, v in fold_scores.items() if all(math.isfinite(x) for x in v)]
    n_folds = min((len(fold_scores[k]) for k in keys), default=0)
    out: dict[str, Any] = {"architectures": len(keys), "pairs": {}}
    if len(keys) < 3 or n_folds < 2:
        out["note"] = ("needs at least 3 architectures evaluated by several repeats and 2 "
                       f"folds (have {len(keys)} and {n_folds})")
        out["mean"] = None
        return out
    values = np.array([list(fold_scores[k])[:n_folds] for k in keys])
    for i, j in itertools.combinations(range(n_folds), 2):
        rho = spearmanr(values[:, i], values[:, j]).statistic
        out["pairs"][f"fold {i} vs fold {j}"] = None if np.isnan(rho) else float(rho)
    rhos = [v for v in out["pairs"].values() if v is not None]
    out["mean"] = float(np.mean(rhos)) if rhos else None
    return out


def search_stability(labels: Sequence[str], best_scores: Sequence[float],
                     best_genotypes: Sequence[Mapping[str, Any]],
                     evaluated: Sequence[set[str]],
                     fold_scores: Mapping[str, Sequence[float]]) -> dict[str, Any]:
    """Every stability figure of one group of repeated searches.

    Args:
        labels: A name per repeat.
        best_scores: Each repeat's best search score.
        best_genotypes: Each repeat's best genotype (dicts).
        evaluated: The architecture keys each repeat evaluated.
        fold_scores: arch key -> per-fold score, for (at least) the shared architectures.
    """
    spread = stability(best_scores, best_genotypes, labels)
    pairs = {f"{labels[i]} vs {labels[j]}": variable_distances(best_genotypes[i],
                                                               best_genotypes[j])
             for i, j in itertools.combinations(range(len(labels)), 2)}
    mean_distance = {v: float(np.nanmean([p[v] for p in pairs.values()])) if pairs else None
                     for v in VARIABLES}
    counts: dict[str, int] = {}
    for keys in evaluated:
        for k in keys:
            counts[k] = counts.get(k, 0) + 1
    shared = {k for k, n in counts.items() if n > 1}
    return {
        "repeats": len(labels), "spread": spread, "distance": pairs,
        "mean_distance": mean_distance,
        "option_frequencies": option_frequencies(best_genotypes),
        "agreement": variable_agreement(best_genotypes),
        "identical": _identical(best_genotypes),
        "evaluated": {lab: len(k) for lab, k in zip(labels, evaluated, strict=True)},
        "shared_architectures": len(shared),
        "rank_correlation": fold_rank_correlation({k: fold_scores[k] for k in shared
                                                   if k in fold_scores}),
    }


def agreement_html(groups: Mapping[str, Mapping[str, Any]]) -> str:
    """One table, a column per group of repeats: the agreement of their best genotypes
    per variable (node x variable type), the mean per type and the identical share."""
    names = [n for n, s in groups.items() if s.get("agreement")]
    if not names:
        return ""
    head = "".join(f"<th>{escape(n)}</th>" for n in names)
    rows: list[tuple[str, list[Any]]] = []
    for var in dict.fromkeys(v for n in names for v in groups[n]["mean_distance"]):
        rows.append((f"{var}, mean over nodes", [
            None if groups[n]["mean_distance"].get(var) is None
            else 1.0 - groups[n]["mean_distance"][var] for n in names]))
    rows.append(("the whole network", [groups[n].get("identical") for n in names]))
    nodes = dict.fromkeys(k for n in names for k in groups[n]["agreement"])
    for node in nodes:
        for var in dict.fromkeys(v for n in names for v in groups[n]["agreement"].get(node, {})):
            values = [groups[n]["agreement"].get(node, {}).get(var) for n in names]
            if any(v is not None and v < 1.0 for v in values):
                rows.append((f"{node} {var}", values))
    body = "".join(f"<tr><td>{escape(label)}</td>" + "".join(f"<td>{_f(v)}</td>"
                                                             for v in values) + "</tr>"
                   for label, values in rows)
    return ("<h3>Agreement per variable</h3><p>The share of pairs of repeats whose best "
            "networks chose the same option, per variable (1: all repeats agree); "
            "variables on which every group agrees fully are left out.</p>"
            f"<table><thead><tr><th>variable</th>{head}</tr></thead><tbody>{body}"
            "</tbody></table>")


def card_line(s: Mapping[str, Any]) -> str:
    """One line for the reporting card's "search stability" row."""
    sp = s["spread"]
    dist = ", ".join(f"{v} {d:.2f}" for v, d in s["mean_distance"].items() if d is not None)
    rho = s["rank_correlation"].get("mean")
    std = sp.get("best_score_std")
    return (f"{s['repeats']} repeats: best score {sp['best_score_mean']:.4f} "
            f"(sd {std:.4f}, range {sp['best_score_range']:.4f})"
            if std is not None else f"{s['repeats']} repeat") + (
        f"; mean distance between best genotypes per variable: {dist}"
        f"; {s['shared_architectures']} architectures evaluated by several repeats"
        + (f", fold-to-fold rank correlation {rho:.2f}" if rho is not None else ""))


def _f(x: Any) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else (
        f"{x:.4f}" if isinstance(x, float) else escape(str(x)))


def stability_html(groups: Mapping[str, Mapping[str, Any]]) -> str:
    """The report page's stability section: one block per group of repeats."""
    if not groups:
        return ('<p class="na">not measured: no repeated searches (run `mbnas search '
                '--repeats K` and give its folder to `mbnas report`)</p>')
    html = ""
    for name, s in groups.items():
        sp = s["spread"]
        html += (f"<h3>{escape(name)}</h3><p>{escape(card_line(s))}.</p>"
                 "<table><thead><tr><th>spread of the best scores</th><th>mean</th><th>sd"
                 "</th><th>min</th><th>max</th><th>range</th></tr></thead><tbody><tr><td>"
                 f"{s['repeats']} repeats</td>" + "".join(
                     f"<td>{_f(sp.get(k))}</td>" for k in ("best_score_mean", "best_score_std",
                                                         "best_score_min", "best_score_max",
                                                         "best_score_range"))
                 + "</tr></tbody></table>")
        distance_columns = _columns(s["distance"])
        html += ("<table><thead><tr><th>best genotypes</th>"
                 + "".join(f"<th>{escape(v)} distance</th>" for v in distance_columns)
                 + "</tr></thead><tbody>"
                 + "".join(f"<tr><td>{escape(pair)}</td>"
                           + "".join(f"<td>{_f(d.get(v))}</td>" for v in distance_columns)
                           + "</tr>" for pair, d in s["distance"].items()) + "</tbody></table>")
        chosen_columns = _columns(s["option_frequencies"])
        html += ("<table><thead><tr><th>node</th>"
                 + "".join(f"<th>{escape(v)} chosen (count over repeats)</th>"
                           for v in chosen_columns)
                 + "</tr></thead><tbody>"
                 + "".join(f"<tr><td>{escape(node)}</td>" + "".join(
                     "<td>" + escape(", ".join(f"{o} {n}" for o, n in sorted(
                         per.get(v, {}).items(), key=lambda t: -t[1]))) + "</td>"
                     for v in chosen_columns)
                           + "</tr>" for node, per in s["option_frequencies"].items())
                 + "</tbody></table>")
        rc = s["rank_correlation"]
        pairs = ", ".join(f"{k}: {_f(v)}" for k, v in rc["pairs"].items())
        html += (f"<p>Rank correlation (Spearman) of the scores of the "
                 f"{s['shared_architectures']} architectures several repeats evaluated, "
                 "between folds (the shared store gives each one score, so the folds are "
                 f"compared): {escape(pairs or rc.get('note', 'n/a'))}"
                 f"{'; mean ' + _f(rc['mean']) if rc.get('mean') is not None else ''}.</p>")
    return html + agreement_html(groups)
