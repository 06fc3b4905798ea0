"""What `mbnas evaluate` writes of its finished runs: each model's per-case scores
(:class:`ModelEvaluation`) and ``evaluation.json``, also rebuilt by `mbnas report` to check
an evaluation against its store."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from mbnas.commands.common.evaluation_file import EvaluationFile, ModelDetails
from mbnas.commands.common.runfolder import EvaluationFolder
from mbnas.commands.common.search_runs import EvaluatedModel, slug
from mbnas.commands.evaluate.export import search_state
from mbnas.commands.evaluate.original_grid import metrics_key
from mbnas.metrics.registry import METRICS
from mbnas.reporting.report_data import CaseScore, ModelCost, ModelEvaluation
from mbnas.scoring.train import EvaluationResult
from mbnas.training.protocol import Protocol

if TYPE_CHECKING:
    from mbnas.commands.evaluate.run import EvaluateConfig

SMP_WIDTH = "full width (smp encoder, 64 first-stage channels)"


def model_width(model: EvaluatedModel, protocol: Protocol) -> str:
    """The width a model was trained at, in words (shown next to its numbers)."""
    if model.architecture.get("kind") == "baseline":
        return SMP_WIDTH
    return f"{protocol.base_channels} base channels"


def model_evaluation(model: EvaluatedModel, result: EvaluationResult,
                     label_names: dict[int, str], cost: ModelCost | None = None,
                     original: dict[str, Any] | None = None, width: str | None = None
                     ) -> ModelEvaluation:
    """The per-case scores of a model's finished runs, as a :class:`ModelEvaluation`.

    ``cases`` hold the metrics on the original grid where ``original`` has them (else
    the training grid's 3D metrics of the run), ``paper_cases`` the per-slice ones.
    """
    cases, paper_cases = [], []
    for run in result.runs:
        if run.status != "finished":
            continue
        for case_id, trained in sorted((run.metrics.get("cases") or {}).items()):
            m = (original or {}).get(metrics_key(run.arch_key, run.fold, run.seed, case_id),
                                     trained)
            measured = [n for n in METRICS.names() if n in m]  # older runs lack newer ones
            per_class = {label_names.get(c, f"class {c}"): {n: m[n][k] for n in measured}
                         for k, c in enumerate(m["classes"])}
            cases.append(CaseScore(model.name, run.seed, run.fold, case_id,
                                   {n: m[f"mean_{n}"] for n in measured}, per_class))
            paper = trained.get("paper")
            if paper:
                per_class = {label_names.get(int(c), f"class {c}"): dict(v)
                             for c, v in paper["per_class"].items()}
                paper_cases.append(CaseScore(model.name, run.seed, run.fold, case_id,
                                             {n: paper[n] for n in METRICS.names() if n in paper},
                                             per_class, paper.get("slices"),
                                             paper.get("both_empty")))
    return ModelEvaluation(
        name=model.name, kind=model.kind, architecture=model.architecture, cases=tuple(cases),
        cost=cost if cost is not None else ModelCost(),
        source_run=str(model.search_run.folder) if model.search_run else None,
        paper_cases=tuple(paper_cases), width=width)


def constant_runs(result: EvaluationResult) -> tuple[str, ...]:
    """``"fold F seed S"`` of a model's runs whose validation prediction was constant."""
    return tuple(f"fold {r.fold} seed {r.seed}" for r in result.runs
                 if (r.metrics or {}).get("constant_prediction") is not None)


def _seconds_by_device(result: EvaluationResult) -> dict[str, float]:
    out: dict[str, float] = {}
    for r in result.runs:
        out[r.device] = out.get(r.device, 0.0) + r.seconds
    return out


def evaluation_file(folder: EvaluationFolder, config: EvaluateConfig,
                    models: Sequence[EvaluatedModel], results: Sequence[EvaluationResult],
                    evaluations: Sequence[ModelEvaluation], data: Any,
                    folds: Sequence[Sequence[str]]) -> EvaluationFile:
    """What ``evaluation.json`` holds: the model evaluations and what the report needs."""
    details = {}
    for m, res in zip(models, results, strict=True):
        search = None
        if m.search_run is not None:
            r = m.search_run
            search = {"run_dir": str(r.folder), "space": r.space,
                      "strategy": r.config.get("strategy"), "seed": r.config.get("seed"),
                      **search_state(r)}
        details[m.name] = ModelDetails(
            arch_key=m.arch_key, runs=len(res.runs),
            model_dir=folder.model_dir(slug(m.name)).relative_to(folder.path).as_posix(),
            failed_runs=tuple(f"fold {r.fold} seed {r.seed}" for r in res.runs
                              if r.status != "finished"),
            run_score_mean=None if math.isnan(res.score) else res.score,
            seconds_by_device=_seconds_by_device(res), search=search,
            versions=res.runs[0].versions if res.runs else {},
            constant_runs=constant_runs(res))
    return EvaluationFile(
        config=config.to_dict(), protocol_key=config.protocol.key,
        label_names=dict(data.label_names), channel_names=tuple(data.channel_names),
        sites={c.case_id: c.site for c in data.cases},
        folds=tuple(tuple(f) for f in folds), models=tuple(evaluations), details=details)
