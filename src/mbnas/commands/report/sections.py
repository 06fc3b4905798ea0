"""The report's search-stability and domain-shift sections: read the folders, compute, render.

Reads what :mod:`mbnas.reporting.stability` and :mod:`mbnas.reporting.domain_shift` compute
from: each repeat's ``search_log.jsonl`` and ``best.json``, the shared store of a
``--repeats`` folder (per-fold scores), the evaluation's sites and folds and
``external.json``. Also fills the reporting card's rows these sections measure, and says
when a search's objective was held-out-site Dice.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mbnas.commands.common.evaluation_file import EvaluationFile
from mbnas.commands.common.repeats import repeat_groups, store_path
from mbnas.commands.common.runfolder import EvaluationFolder
from mbnas.commands.common.search_runs import SearchRun
from mbnas.io import atomic_write_json
from mbnas.reporting.card import ReportingCard
from mbnas.reporting.report_data import ModelEvaluation

HELD_OUT_SITE_OBJECTIVE = ("held-out-site Dice: leave-site-out folds (--folds site), each "
                           "fold validating on one site's cases after training on the others")


@dataclass
class Sections:
    """HTML sections for the page, card rows to replace, and files written."""

    html: list[tuple[str, str, str]] = field(default_factory=list)
    card: dict[str, Any] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)


def _fold_scores(store_file: Path, keys: set[str], protocol_key: str) -> dict[str, list[float]]:
    """arch key -> per-fold score (mean over seeds) of the finished runs in a store."""
    from mbnas.store import ResultStore, StoreError

    out: dict[str, list[float]] = {}
    try:
        with ResultStore(store_file, read_only=True) as store:
            for k in keys:
                by_fold: dict[int, list[float]] = {}
                for r in store.runs(arch_key=k, protocol_key=protocol_key):
                    if r.status == "finished" and r.score is not None:
                        by_fold.setdefault(r.fold, []).append(float(r.score))
                if by_fold:
                    out[k] = [float(np.mean(by_fold[f])) for f in sorted(by_fold)]
    except StoreError:
        return {}
    return out


def stability_groups(runs: Sequence[SearchRun]) -> dict[str, dict[str, Any]]:
    """The stability figures of each ``--repeats`` folder among the runs."""
    from mbnas.reporting.stability import search_stability
    from mbnas.strategies.registry import default_strategy

    by_folder = {r.folder: r for r in runs}
    out = {}
    for parent, folders in repeat_groups(list(by_folder)).items():
        group = [by_folder[f] for f in folders]
        logs = [r.files.read_search_log() for r in group]
        evaluated = [{e["arch_key"] for e in log if e.get("arch_key")} for log in logs]
        keys = set().union(*evaluated)
        scores = _fold_scores(store_path(group[0].folder), keys,
                              str(group[0].best.get("protocol_key")))
        strategy = group[0].config.get("strategy") or default_strategy()
        out[f"{group[0].name.split(' (')[0]} {strategy} repeats in {parent.name}"] = \
            search_stability(
                [f"{r.folder.name} (seed {r.config.get('seed')})" for r in group],
                [math.nan if r.best.get("score") is None else float(r.best["score"])
                 for r in group],
                [r.genotype for r in group], evaluated, scores)
    return out


def build_sections(out: Path, runs: Sequence[SearchRun], evaluation: EvaluationFile | None,
                   evals: Sequence[ModelEvaluation], eval_dir: Path | None,
                   card: ReportingCard) -> Sections:
    """Compute both sections, write their JSON next to the report, fill the card."""
    from mbnas.commands.evaluate.external import read_external
    from mbnas.reporting.domain_shift import card_value, domain_shift, domain_shift_html
    from mbnas.reporting.stability import card_line, stability_html

    s = Sections()
    groups = stability_groups(runs)
    path = out / "stability.json"
    atomic_write_json(path, groups)
    s.files.append(path)
    s.html.append(("stability", "Search stability", stability_html(groups)))
    if groups:
        s.card["search_stability"] = {name: card_line(g) for name, g in groups.items()}
    if evaluation is not None and eval_dir is not None:
        shift = domain_shift(evals, evaluation.sites, evaluation.folds,
                             read_external(EvaluationFolder(eval_dir).external))
        path = out / "domain_shift.json"
        atomic_write_json(path, shift)
        s.files.append(path)
        s.html.append(("domain-shift", "Domain shift", domain_shift_html(shift)))
        s.card["external_validation"] = card_value(shift)
    else:
        s.html.append(("domain-shift", "Domain shift",
                       '<p class="na">needs an evaluation (mbnas evaluate, with --folds site '
                       'or --external)</p>'))
    if evaluation is not None and evaluation.protocol.volume is None:  # empty slices, cases
        from mbnas.commands.report.empty import empty_counts, empty_html

        counts = empty_counts(evaluation, None)
        path = out / "empty_validation.json"
        atomic_write_json(path, counts)
        s.files.append(path)
        s.html.append(("empty-validation", "Empty validation data", empty_html(counts)))
    site_runs = [r for r in runs if r.config.get("split") == "site"]
    if site_runs:
        def name(r: SearchRun) -> str:
            return r.label if len(runs) > 1 else r.name

        definition: dict[str, Any] = (
            dict(card.score_definition) if isinstance(card.score_definition, Mapping)
            else {"search": card.score_definition})
        definition["search objective"] = {name(r): HELD_OUT_SITE_OBJECTIVE for r in site_runs}
        folds = dict(card.folds) if isinstance(card.folds, Mapping) else {}
        folds.update({name(r): f"leave-site-out: {r.protocol.folds} folds, one per held-out "
                      "site" for r in site_runs})
        s.card["score_definition"], s.card["folds"] = definition, folds
    return s


def apply(card: ReportingCard, sections: Sections) -> ReportingCard:
    return dataclasses.replace(card, **sections.card)
