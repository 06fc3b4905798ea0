"""`mbnas report`: the report of a NAS study from its search runs and (optionally) its evaluation.

Writes into the report folder:

* ``report.html``: one self-contained page (images embedded, no scripts, opens offline);
* ``table1.md``/``.csv``/``.json``: Table 1 as in the paper (with an evaluation), per
  case in 3D on the original grid; ``table1_paper.*``: the paper-comparable Table 1,
  per 2D slice on the training grid, as the authors measured;
* ``statistics.json``: Friedman test and Wilcoxon tests with Holm correction;
* ``card.md``/``card.json``: the NAS reporting card;
* ``figures/``: search progress of every run on one plot, the best architectures,
  per-case Dice and HD95 box plots and example segmentations (PNG and SVG).

Without an evaluation it is a search-only report: progress, architectures and the card;
Table 1 and the statistics say that no evaluation exists yet.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mbnas.commands.common.evaluation_file import EvaluationFile, read_evaluation
from mbnas.commands.common.runfolder import reading_lock
from mbnas.commands.common.search_runs import SearchRun, progress_label, read_search_runs, slug
from mbnas.commands.report.card import NO_EVALUATION, build_card, card_markdown
from mbnas.commands.report.figures import draw_best, example_segmentations
from mbnas.commands.report.sections import apply as apply_sections
from mbnas.commands.report.sections import build_sections
from mbnas.commands.report.verify import (
    search_zero_fold_notes,
    stale_notes,
    verify_evaluation,
)
from mbnas.errors import ConfigError, MbnasError
from mbnas.io import atomic_write_json, atomic_write_text
from mbnas.progress import Step, track
from mbnas.reporting.report_data import ModelEvaluation
from mbnas.spaces.languages import architecture_text

PNG = ".png"
#: The file that marks a folder as a report folder (so a new report may replace its files).
REPORT_MARKER = ".mbnas-report.json"


@dataclass
class ReportOutcome:
    folder: Path
    html: Path
    files: list[Path]
    notes: list[str]


def build_report(run_dirs: Sequence[str | Path], out: str | Path,
                 evaluation: str | Path | None = None,
                 cache_dir: str | Path | None = None,
                 nnunet: Sequence[str] = ()) -> ReportOutcome:
    """Build the report of ``run_dirs`` (and of the evaluation folder, if given) into ``out``.

    Args:
        run_dirs: Search run folders; may be empty when ``evaluation`` is given (then
            the evaluation's runs are used).
        out: The report folder (created).
        evaluation: An `mbnas evaluate` folder, or None for a search-only report.
        cache_dir: Preprocessing cache for the example segmentations (default: the
            evaluation's).
        nnunet: nnU-Net results folders (``DIR`` or ``DIR:LABEL``) whose ``2d`` and
            ``2d_mbnas`` validation results become rows (see ``mbnas.reporting.nnunet``).

    Raises:
        ConfigError: for unusable run folders or an evaluation of another dataset.
    """
    check_report_folder(out)
    stages = _stages(evaluation is not None)  # corrected once the evaluation is read
    with _evaluation_lock(evaluation), track("report", stages, unit="stage") as step:
        return _build_report(run_dirs, out, evaluation, cache_dir, nnunet, step)


def check_report_folder(out: str | Path) -> None:
    """Refuse a report folder that holds anything but an earlier report: the report
    replaces ``report.html``, ``table1.csv`` and the rest by name, and must never replace
    a user's own files of those names. An earlier report is known by its marker
    (:data:`REPORT_MARKER`, written before anything else)."""
    out = Path(out)
    if not out.is_dir() or (out / REPORT_MARKER).is_file():
        return
    if any(out.iterdir()):
        raise ConfigError(f"{out}: --out is not empty and holds no earlier report (no "
                          f"{REPORT_MARKER}); choose a new or empty folder")


def _mark_report_folder(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    if not (out / REPORT_MARKER).is_file():
        atomic_write_json(out / REPORT_MARKER, {"format": "mbnas-report", "note": (
            "written by mbnas report: the report may write into this folder again")})


def _stages(evaluated: bool) -> int:
    """The report's progress stages: search progress, drawings, front, [tables, box
    plots, examples,] card, page."""
    return 8 if evaluated else 5


@contextmanager
def _evaluation_lock(evaluation: str | Path | None) -> Iterator[None]:
    """Hold the evaluation folder's lock while reading it (see
    :func:`~mbnas.commands.common.runfolder.reading_lock`)."""
    folder = Path(evaluation) if evaluation is not None else None
    if folder is None or not folder.is_dir():
        yield
        return
    with reading_lock(folder):
        yield


def _build_report(run_dirs: Sequence[str | Path], out: str | Path,
                  evaluation: str | Path | None, cache_dir: str | Path | None,
                  nnunet: Sequence[str], step: Step) -> ReportOutcome:
    from mbnas.reporting.front import front_section
    from mbnas.reporting.html import FigureRef, build_html
    from mbnas.reporting.progress_figure import plot_search_progress
    from mbnas.reporting.stats import FriedmanResult, WilcoxonReport, friedman, wilcoxon_vs_best
    from mbnas.reporting.table import build_table, write_table

    record, eval_dir = None, None
    evals: list[ModelEvaluation] = []
    if evaluation is not None:
        eval_dir = Path(evaluation).resolve()
        record, evals = read_evaluation(eval_dir)
        verify_evaluation(eval_dir, record)  # its figures are its store's, or refused
        run_dirs = list(run_dirs) or record.run_dirs
    runs = read_search_runs(run_dirs)
    if record is not None and runs[0].data_dir != str(Path(record.data_dir).resolve()):
        raise ConfigError(f"{eval_dir} evaluated {record.data_dir}, but the search "
                          f"runs searched {runs[0].data_dir}; give runs of that dataset")
    nn_rows = []
    if nnunet:
        from mbnas.reporting.nnunet import read_nnunet_results

        nn_rows = [row for spec in nnunet for row in read_nnunet_results(spec)]
    out = Path(out)
    _mark_report_folder(out)  # every input was read: the report is written from here on
    figs = out / "figures"
    files: list[Path] = []
    notes: list[str] = []
    figures: list[FigureRef] = []

    def add(paths: Sequence[Path], caption: str) -> None:
        if not paths:  # a language that draws nothing
            return
        files.extend(paths)
        figures.append(FigureRef(next(p for p in paths if p.suffix == PNG), caption))

    step.total = _stages(record is not None and bool(evals))
    logs = [r.files.read_search_log() for r in runs]
    add(plot_search_progress([(progress_label(r.config), log)
                              for r, log in zip(runs, logs, strict=True)],
                             figs / "search_progress"),
        "Search progress of every run: each evaluation's score (dots, with bars of ± one "
        "standard error over folds x seeds) and the best so far.")
    step.advance(info="search progress figure")
    from mbnas.reporting.noise import best_vs_start, score_with_se, thread_notes

    for r, log in zip(runs, logs, strict=True):
        versus = best_vs_start(log)
        add(draw_best(r, figs / f"architecture_{slug(r.name)}"),
            f"Best network of {r.label} (search score "
            f"{score_with_se(log, r.best.get('score'))}{'; ' + versus if versus else ''}): "
            f"{architecture_text(r.genotype)}.")
    notes += thread_notes([(r.label, log) for r, log in zip(runs, logs, strict=True)])
    step.advance(info=f"{len(runs)} architecture drawing(s)")
    front_html, front_files = front_section(  # cost-aware runs
        [(r.label, r.files.read_front(), log) for r, log in zip(runs, logs, strict=True)],
        evals, figs, out, add)
    files += front_files
    step.advance(info="Pareto front")
    from mbnas.reporting.suspect import constant_search_notes, suspect_notes

    notes += constant_search_notes([(r.label, log) for r, log in zip(runs, logs, strict=True)])
    notes += search_zero_fold_notes(runs)
    if record is not None:
        notes += stale_notes(record, runs)
    tolerance = 2.0
    paper_table = None
    if record is not None and evals:
        protocol = record.protocol
        tolerance = protocol.surface_tolerance_mm
        from mbnas.metrics.registry import METRICS
        from mbnas.reporting.figures import measured_metrics, plot_case_boxplot

        table = build_table(evals, tolerance)
        files += write_table(evals, out, tolerance)
        if any(e.paper_cases for e in evals):
            paper_table = build_table(evals, tolerance, paper=True)
            files += write_table(evals, out, tolerance, "table1_paper", paper=True)
        notes += suspect_notes(evals, {n: d.constant_runs for n, d in record.details.items()})
        fried, wilc = friedman(evals), wilcoxon_vs_best(evals)
        step.advance(info="tables and statistics")
        for metric in measured_metrics(evals):
            add(plot_case_boxplot(evals, metric, figs / f"boxplot_{metric}"),
                f"{METRICS.get(metric).axis_label} per validation case (mean over seeds) of "
                "every model.")
        step.advance(info="box plots")
        assert eval_dir is not None  # read with the record
        try:
            paths, caption = example_segmentations(record, evals, eval_dir,
                                                   figs / "example_segmentations", cache_dir)
            add(paths, caption)
        except MbnasError as exc:
            notes.append(f"example segmentations not drawn: {exc}")
        step.advance(info="example segmentations")
    else:
        table = None
        fried = FriedmanResult(False, (), 0, 0, reason=NO_EVALUATION)
        wilc = WilcoxonReport(None, reason=NO_EVALUATION)
    nn_tests = []
    if nn_rows:
        from mbnas.reporting.nnunet import case_comparisons, describe
        from mbnas.reporting.stats import best_searched

        table = build_table([*evals, *nn_rows], tolerance)
        files += write_table([*evals, *nn_rows], out, tolerance)
        nn_tests = case_comparisons(nn_rows, best_searched(evals))
        notes.append("rows marked 'trained by nnU-Net' come from nnU-Net's validation "
                     "summaries; per-case Wilcoxon tests: " + (describe(nn_tests) or "none"))
    stats_path = out / "statistics.json"
    atomic_write_json(stats_path, {"friedman": fried.to_dict(), "wilcoxon": wilc.to_dict(),
                                   "paired_values": "run-level Dice per (seed, fold): the "
                                   "mean Dice over each run's validation cases",
                                   **({"nnunet_case_tests": nn_tests} if nn_rows else {})})
    dataset = dataset_info(runs[0], record)
    if dataset.get("licence"):  # e.g. the lung sample: cases under CC BY-NC 3.0
        notes.append(f"data licence (the dataset's dataset.json): {dataset['licence']}; "
                     "results and figures made from these cases are bound by it")
    card = build_card(runs, record, evals, dataset, eval_dir,
                      network_cost=None if evals else search_costs(runs))
    sections = build_sections(out, runs, record, evals, eval_dir, card)  # stability, shift
    card, files = apply_sections(card, sections), files + sections.files
    card_paths = [out / "card.json", out / "card.md"]
    atomic_write_json(card_paths[0], card.to_dict())
    atomic_write_text(card_paths[1], card_markdown(card))
    step.advance(info="card and sections")
    intro = (f"Search runs: {', '.join(f'{r.label} ({r.folder})' for r in runs)}. "
             + (f"Evaluation: {eval_dir} ({len(evals)} models)." if eval_dir
                else "Search-only report: " + NO_EVALUATION + ".")
             + "".join(f" Note: {n}." for n in notes))
    html = build_html(out / "report.html",
                      title=f"NAS report: {dataset.get('name') or Path(dataset['path']).name}",
                      table=table, card=card, friedman=fried, wilcoxon=wilc, figures=figures,
                      intro=intro, paper_table=paper_table,
                      sections=[*([("front", "Pareto front", front_html)] if front_html
                                  else []), *sections.html])
    step.advance(info="report.html")
    return ReportOutcome(out, html, [html, *files, stats_path, *card_paths], notes)


def dataset_info(run: SearchRun, evaluation: EvaluationFile | None) -> dict[str, Any]:
    """Name, path, number of cases, cases per site and licence of the dataset."""
    info: dict[str, Any] = {"path": run.data_dir}
    sites: dict[str, int] = {}
    try:
        from mbnas.data import read_dataset

        ds = read_dataset(run.data_dir)
        info.update(name=ds.name, cases=len(ds.cases))
        licence = _licence(Path(run.data_dir))
        if licence:
            info["licence"] = licence
        for c in ds.cases:
            if c.site is not None:
                sites[str(c.site)] = sites.get(str(c.site), 0) + 1
    except MbnasError:
        recorded = evaluation.sites if evaluation is not None else {}
        info["cases"] = len(recorded) or "not available (dataset not readable)"
        for s in recorded.values():
            if s is not None:
                sites[str(s)] = sites.get(str(s), 0) + 1
    info["sites"] = sites
    return info


def _licence(data_dir: Path) -> str | None:
    """``dataset.json``'s ``licence`` (MSD's field; the lung sample writes one), if any."""
    import json

    try:
        value = json.loads((data_dir / "dataset.json").read_text()).get("licence")
    except (OSError, ValueError, AttributeError):
        return None
    return str(value).strip() or None if value else None


def search_costs(runs: Sequence[SearchRun]) -> dict[str, str]:
    """Parameters and MACs of each run's best network at its search's training size."""
    from mbnas.commands.common.model_cost import cost_model
    from mbnas.costs.measure import cost_report

    out = {}
    for r in runs:
        p = r.protocol
        dataset = r.config.get("data_dir")
        try:
            from mbnas.data import read_dataset

            ds = read_dataset(str(dataset))
            c, k = len(ds.channel_names), len(ds.label_names)
        except MbnasError:
            continue
        if p.volume is not None:  # 3D: at the training patch, with the planned strides
            patch = tuple(p.volume.patch_size)
            cost = cost_report(cost_model(r.genotype, c, k, p.base_channels, spatial_dims=3,
                                          strides=p.volume.strides), patch, c, k,
                               memory=False, spatial_dims=3)
            at = "x".join(map(str, patch)) + " (3D patch)"
        else:
            cost = cost_report(cost_model(r.genotype, c, k, p.base_channels), p.image_size, c,
                               k, memory=False)
            at = f"{p.image_size}x{p.image_size}"
        out[r.name] = (f"{cost.params / 1e6:.3g} M params; {cost.macs / 1e6:.3g} MMAC "
                       f"at {at} (base channels {p.base_channels})")
    return out
