"""The NAS reporting card of `mbnas report`, filled from search run folders and an evaluation.

Every value comes from what the runs recorded: their ``config.yaml``, ``best.json``,
``search_log.jsonl``, stores (compute time per device) and ``splits.json``, and the
evaluation's ``evaluation.json``. What was not measured says so.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mbnas.commands.common.evaluation_file import EvaluationFile
from mbnas.commands.common.runfolder import EvaluationFolder
from mbnas.commands.common.search_runs import SearchRun
from mbnas.data.planning import format_strides
from mbnas.errors import MbnasError
from mbnas.reporting.card import (
    NOT_AVAILABLE,
    NOT_DONE,
    ReportingCard,
    cost_summary,
    software_versions,
    stability,
)
from mbnas.reporting.front import objectives_text
from mbnas.reporting.report_data import ModelEvaluation
from mbnas.spaces.mbnas import Genotype, get_space, kernel_space
from mbnas.strategies import STRATEGIES, method_description, strategy_definition
from mbnas.training.protocol import Protocol

NO_EVALUATION = "no evaluation yet: run `mbnas evaluate` on the search runs"


DICE_TEXT = {"pooled": "TP/FP/FN pooled over the fold's validation slices, per class, "
                        "averaged over classes",
             "case": "per case in 3D, averaged over classes and cases"}


def _count(n: int) -> str:
    return f"{n:,}" if n < 10 ** 9 else f"{n:.3e} (exactly {n})"


def plural(n: int, word: str) -> str:
    """``1 evaluation``, ``2 evaluations``."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


#: How the folds of each ``split`` setting are made (config.yaml's ``split``).
SPLIT_TEXT = {"case": "patient-level cross-validation",
              "site": "leave-site-out cross-validation (one held-out site per fold)",
              "group-site": "patient-level cross-validation, grouped by site"}


def folds_text(n_folds: int, split: str | None) -> str:
    """``3-fold patient-level cross-validation``, from a config's fold count and split."""
    kind = SPLIT_TEXT.get(split or "case", f"{split} cross-validation")
    return f"{n_folds}-fold {kind}"


def versions_for(recorded: Mapping[str, str], devices: Sequence[str]) -> dict[str, str]:
    """Recorded run versions; torch's CUDA build is marked unused when no run used CUDA."""
    out = dict(recorded)
    if "cuda" in out and not any(d.startswith("cuda") for d in devices):
        out["torch CUDA build (not used: no run on a GPU)"] = out.pop("cuda")
    return out


def space_size(run: SearchRun) -> str:
    """The exact size of a run's search space; both phases for bilevel search."""
    depth = run.config.get("max_depth")
    depth = int(depth) if depth is not None else None
    space = get_space(run.space, depth)
    if not strategy_definition(run.strategy).kernel_phase:
        return f"{_count(space.size())} networks (max depth {space.max_depth})"
    topo = space.size()
    text = f"phase 1 (topology): {_count(topo)} networks"
    phase1 = [e for e in run.files.read_search_log()
              if e.get("phase") == "topology" and e.get("score") is not None]
    if phase1:
        best = Genotype.from_dict(max(phase1, key=lambda e: e["score"])["genotype"])
        text += (f"; phase 2 (kernels of the best topology): "
                 f"{_count(kernel_space(best, depth).size())} networks")
    return text


def hours_by_device(seconds: Mapping[str, float]) -> str:
    """``{"cuda": 7200}`` -> "2 GPU h (cuda)"; several devices joined by "; "."""
    if not seconds:
        return "nothing trained"
    parts = []
    for device, s in sorted(seconds.items()):
        kind = "GPU" if device.startswith("cuda") else "CPU"
        parts.append(f"{s / 3600:.3g} {kind} h ({device})")
    return "; ".join(parts)


def search_seconds(run: SearchRun) -> dict[str, float]:
    """Training seconds per device of a search run, from its store (read-only)."""
    from mbnas.commands.common.repeats import store_path
    from mbnas.store import ResultStore, StoreError

    out: dict[str, float] = {}
    try:
        with ResultStore(store_path(run.folder), read_only=True) as store:
            for r in store.runs():
                out[r.device] = out.get(r.device, 0.0) + r.seconds
    except StoreError:
        return {}
    return out


def search_trainings(run: SearchRun) -> str:
    """How many trainings a search ran at each fidelity (``--fidelity``), from its store.

    Every training counts, the low-fidelity ones and those ``--race`` stopped early
    included: they are what the search cost (its hours, ``search_hours``, count them all).
    """
    from mbnas.commands.common.repeats import store_path
    from mbnas.scoring.fidelity import parse_rungs, rung_protocol
    from mbnas.store import ResultStore, StoreError

    p = run.protocol
    try:
        rungs = parse_rungs(run.config.get("fidelity"))
    except MbnasError:
        rungs = ()
    labels = {rung_protocol(p, r).key: f"at fidelity {r:g} ({rung_protocol(p, r).epochs} "
              "epochs, 1 fold x 1 seed)" for r in rungs[:-1]}
    labels[p.key] = (f"full protocol ({p.epochs} epochs, {p.folds} folds x "
                     f"{len(p.seeds)} seed(s))")
    counts = dict.fromkeys(labels, 0)
    try:
        with ResultStore(store_path(run.folder), read_only=True) as store:
            for r in store.runs():
                if r.protocol_key in counts:
                    counts[r.protocol_key] += 1
    except StoreError:
        return NOT_AVAILABLE
    parts = [f"{n} {labels[k]}" for k, n in counts.items() if n or k == p.key]
    return f"{sum(counts.values())} trainings: " + "; ".join(parts) + supernet_text(run)


def supernet_text(run: SearchRun) -> str:
    """What a ``--scoring supernet`` search adds to its trainings (its ``supernet.json``):
    the scoring method, the supernets' training cost and the measured rank correlation."""
    if run.config.get("scoring") != "supernet":
        return ""
    try:
        s = json.loads((Path(run.folder) / "supernet.json").read_text())
    except (OSError, ValueError):
        return "; scored by a weight-sharing supernet (its summary is not available)"
    tau = s.get("kendall_tau_top")
    retrained = len(s.get("retrained") or [])
    return (f"; scores of the search by a weight-sharing supernet (inherited weights, BN "
            f"recalibrated): {s.get('folds')} supernet(s) x {s.get('epochs')} epochs "
            f"({s.get('training_seconds', 0):.0f} s), {s.get('scored')} networks scored "
            f"({s.get('scoring_seconds', 0):.0f} s); the trainings above are the best "
            f"{retrained} retrained stand-alone (best.json: best stand-alone score); Kendall "
            "tau supernet vs stand-alone on them: "
            + ("not measured (under 3 networks)" if tau is None else f"{tau:+.2f}"))


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16] if path.is_file() else "missing"


def _per_run(runs: Sequence[SearchRun], value: Any) -> dict[str, Any]:
    return {r.label if len(runs) > 1 else r.name: value(r) for r in runs}


def site_summary(sites: Mapping[str, str | None], folds: Sequence[Sequence[str]],
                 evals: Sequence[ModelEvaluation]) -> str | dict[str, Any]:
    """Per-site validation Dice of every model, or "not done" when there are no sites.

    ``sites``: case id -> site; ``folds``: the validation case ids of each fold.

    When every fold validates on the cases of one site only (leave-site-out folds),
    this is held-out-site validation; otherwise the folds mix sites and the summary is
    labelled as per-site cross-validation performance, not external validation.
    """
    sites = {k: v for k, v in sites.items() if v is not None}
    if len(set(sites.values())) < 2:
        return f"{NOT_DONE} (the dataset records fewer than two sites)"
    fold_sites = [{sites.get(c) for c in fold} for fold in folds]
    held_out = all(len(s) == 1 for s in fold_sites) and \
        len({next(iter(s)) for s in fold_sites}) == len(fold_sites)
    out: dict[str, Any] = {"design": (
        "held-out-site validation: every fold validates on one site, trained on the others"
        if held_out else f"{NOT_DONE} as held-out-site validation: the folds mix sites; "
        "below is the cross-validated Dice per site")}
    for e in evals:
        by_site: dict[str, list[float]] = {}
        for c in e.cases:
            by_site.setdefault(str(sites.get(c.case_id, "unknown")), []).append(c.dice)
        out[e.name] = {s: f"Dice {np.mean(v):.4f} ({len(v)} case scores)"
                       for s, v in sorted(by_site.items())}
    return out


def build_card(runs: Sequence[SearchRun], evaluation: EvaluationFile | None,
               evals: Sequence[ModelEvaluation], dataset: Mapping[str, Any],
               eval_dir: Path | None = None, network_cost: Any = None) -> ReportingCard:
    """Fill the reporting card.

    Args:
        runs: The search runs of the report.
        evaluation: The evaluation's results (None: search-only report).
        evals: Its model evaluations (empty without one).
        dataset: ``{"name", "path", "cases", "sites"}`` of the dataset.
        eval_dir: The evaluation folder (for its splits and config hash).
        network_cost: Cost lines to show when there is no evaluation.
    """
    ev_protocol = evaluation.protocol if evaluation is not None else None

    def search_part(value: Any) -> dict[str, Any]:
        out = _per_run(runs, lambda r: value(r.protocol, r))
        if ev_protocol is not None:
            out["evaluation"] = value(ev_protocol, None)
        return out

    def input_text(p: Protocol, _r: Any) -> str:
        if p.volume is None:
            return (f"{p.image_size} x {p.image_size} (2D axial slices), base channels "
                    f"{p.base_channels}")
        v = p.volume
        return (f"{' x '.join(map(str, v.patch_size))} voxel patches (3D volumes at "
                f"{' x '.join(f'{s:g}' for s in v.spacing)} mm; planned strides per level "
                f"{format_strides(v.strides)}), base channels {p.base_channels}")

    def fxs(p: Protocol, _r: Any) -> str:
        return (f"{plural(p.folds, 'fold')} x {plural(len(p.seeds), 'seed')} = "
                f"{plural(p.folds * len(p.seeds), 'run')}")

    def folds(p: Protocol, r: SearchRun | None) -> str:
        config = r.config if r is not None else (evaluation.config if evaluation else {})
        return folds_text(p.folds, config.get("split"))

    splits = _per_run(runs, lambda r: str(r.files.splits))
    seeds = _per_run(runs, lambda r: f"search seed {r.config.get('seed')} (strategy and "
                     f"folds); initialisations {', '.join(map(str, r.protocol.seeds))}")
    split_seed = _per_run(runs, lambda r: r.config.get("seed"))
    hashes: dict[str, Any] = {}
    for r in runs:
        hashes[r.label] = {"protocol key": r.best.get("protocol_key", NOT_AVAILABLE),
                           "config.yaml sha256": _sha(r.files.config)}
    versions: dict[str, Any] = {"this report": software_versions()}
    evaluation_hours: Any = NO_EVALUATION
    if evaluation is not None and ev_protocol is not None and eval_dir is not None:
        ev_files = EvaluationFolder(eval_dir)
        splits["evaluation"] = str(ev_files.splits)
        split_seed["evaluation"] = evaluation.config.get("split_seed")
        seeds["evaluation"] = f"initialisations {', '.join(map(str, ev_protocol.seeds))}"
        hashes["evaluation"] = {"protocol key": evaluation.protocol_key,
                                "config.yaml sha256": _sha(ev_files.config)}
        details = evaluation.details
        evaluation_hours = {n: hours_by_device(d.seconds_by_device)
                            for n, d in details.items()}
        recorded = next((d.versions for d in details.values() if d.versions), None)
        if recorded:
            versions["evaluation runs"] = versions_for(recorded, [
                dev for d in details.values() for dev in d.seconds_by_device])
    devices = sorted({d for r in runs for d in search_seconds(r)})
    device: dict[str, Any] = {"searches": ", ".join(devices) or NOT_AVAILABLE}
    if evaluation is not None:
        ev_devices = {d for x in evaluation.details.values() for d in x.seconds_by_device}
        device["evaluation"] = ", ".join(sorted(ev_devices)) or NOT_AVAILABLE
        measured = {e.cost.device for e in evals if e.cost.device}
        if measured:
            device["latency measured on"] = ", ".join(sorted(measured))
    by_space: dict[str, list[SearchRun]] = {}
    for r in runs:
        by_space.setdefault(f"{r.space}/{r.strategy}", []).append(r)
    stab = {f"{group[0].name.split(' (')[0]} ({len(group)} runs)": stability(
        [math.nan if r.best.get("score") is None else float(r.best["score"]) for r in group],
        [r.genotype for r in group], [r.label for r in group])
        for group in by_space.values() if len(group) > 1}
    sites = dataset.get("sites") or {}
    return ReportingCard(
        dataset=f"{dataset.get('name', NOT_AVAILABLE)} ({dataset.get('path')})",
        cases=(f"{dataset.get('cases', NOT_AVAILABLE)} cases (patients)"
               + (f", sites: {', '.join(f'{k} ({v})' for k, v in sorted(sites.items()))}"
                  if sites else ", no sites recorded")),
        folds=search_part(folds),
        split_seed=split_seed, splits_file=splits,
        search_space=_per_run(runs, lambda r: method_description(r.space, r.strategy)),
        search_space_size=_per_run(runs, space_size),
        strategy=_per_run(runs, strategy_text),
        budget=_per_run(runs, lambda r: f"{plural(int(r.config.get('budget') or 0), 'evaluation')}"
                        f" ({len(r.files.read_search_log())} done)"),
        objectives=_per_run(runs, lambda r: objectives_text(r.config)),
        epochs=search_part(lambda p, _r: p.epochs),
        folds_x_seeds=search_part(fxs),
        image_size=search_part(input_text),
        score_definition={
            "search": f"mean validation Dice ({DICE_TEXT[runs[0].protocol.dice]}) over the last "
                      f"{runs[0].protocol.score_fraction:.0%} of epochs "
                      f"({runs[0].protocol.score_epochs} of {runs[0].protocol.epochs}), "
                      "averaged over folds x seeds",
            "evaluation": (f"per validation case in 3D on the scan's original grid with the "
                           f"final weights: {_metric_list(ev_protocol.surface_tolerance_mm)}, "
                           "per class and averaged; paper-comparable table: per 2D slice on "
                           "the training "
                           "grid" if ev_protocol else NO_EVALUATION)},
        device=device,
        search_hours=_per_run(runs, lambda r: hours_by_device(search_seconds(r))),
        search_trainings=_per_run(runs, search_trainings),
        evaluation_hours=evaluation_hours,
        seeds=seeds,
        search_stability=stab or (f"{NOT_DONE}: one search run per search space; repeat "
                                  "a search with other --seed values to measure it"),
        external_validation=(site_summary(evaluation.sites, evaluation.folds, evals)
                             if evaluation is not None
                             else f"{NOT_DONE} ({NO_EVALUATION})"),
        network_cost=cost_summary(evals) if evals else (network_cost or NOT_AVAILABLE),
        software_versions=versions,
        config_hashes=hashes,
    )


def strategy_text(run: SearchRun) -> str:
    """The card's strategy row: "local search, start unet"; a strategy with a method of
    its own (dnas) says what it did, and the DNAS phase's epochs and time."""
    name = str(run.config.get("strategy"))
    definition = STRATEGIES.find(name)
    if definition is None or not definition.card:
        return f"{name} search, start {run.config.get('start')}"
    text = f"{name}: {definition.card}"
    decoded = run.files.dnas / "decoded.json"
    if definition.one_shot and decoded.is_file():
        d = json.loads(decoded.read_text(encoding="utf-8"))
        text += (f"; {d.get('epochs')} supernet epochs on {d.get('folds')} folds in "
                 f"{float(d.get('seconds', 0)) / 3600:.2f} h, then {len(d['candidates'])} "
                 "decoded networks (the masked argmax and the most probable others) "
                 "trained stand-alone")
    return text


def _metric_list(tolerance_mm: float) -> str:
    """"Dice, HD95 (mm), Surface Dice (2 mm), ...": every registered metric, for the card."""
    from mbnas.metrics.registry import metric_definitions

    return ", ".join(d.axis_label + (f" ({tolerance_mm:g} mm)" if "tolerance_mm" in d.settings
                                     else "") for d in metric_definitions())


def _md_value(v: Any, indent: int = 0) -> str:
    pad = "  " * indent
    if isinstance(v, Mapping):
        if not v:
            return " none"
        return "".join(f"\n{pad}- **{k}**:{_md_value(x, indent + 1)}" for k, x in v.items())
    if isinstance(v, (list, tuple)):
        return "".join(f"\n{pad}-{_md_value(x, indent + 1)}" for x in v) or " none"
    if isinstance(v, float):
        return f" {v:.4g}"
    return f" {v}"


def card_markdown(card: ReportingCard) -> str:
    """The reporting card as Markdown: a heading per section, nested lists for values."""
    lines = ["# NAS reporting card", ""]
    for head, items in card.sections():
        lines += [f"## {head}", ""]
        lines += [f"- **{label}**:{_md_value(value, 1)}" for label, value in items]
        lines.append("")
    return "\n".join(lines)
