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

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mbnas.commands.common.evaluation_file import EvaluationFile, read_evaluation
from mbnas.commands.common.runfolder import RunLock
from mbnas.commands.common.search_runs import SearchRun, progress_label, read_search_runs, slug
from mbnas.commands.report.card import NO_EVALUATION, build_card
from mbnas.commands.report.sections import apply as apply_sections
from mbnas.commands.report.sections import build_sections
from mbnas.errors import ConfigError, MbnasError
from mbnas.io import atomic_write_json, atomic_write_text
from mbnas.progress import Step, track
from mbnas.reporting.card import ReportingCard
from mbnas.reporting.report_data import ModelEvaluation
from mbnas.spaces.languages import architecture_text

PNG = ".png"


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
    stages = _stages(evaluation is not None)  # corrected once the evaluation is read
    with _evaluation_lock(evaluation), track("report", stages, unit="stage") as step:
        return _build_report(run_dirs, out, evaluation, cache_dir, nnunet, step)


def _stages(evaluated: bool) -> int:
    """The report's progress stages: search progress, drawings, front, [tables, box
    plots, examples,] card, page."""
    return 8 if evaluated else 5


@contextmanager
def _evaluation_lock(evaluation: str | Path | None) -> Iterator[None]:
    """Hold the evaluation folder's lock while reading it: an `mbnas evaluate` still
    writing there is refused by name instead of being read half-way. A folder that cannot
    take a lock (read-only media) is read as it is."""
    folder = Path(evaluation) if evaluation is not None else None
    if folder is None or not folder.is_dir():
        yield
        return
    lock = RunLock(folder)
    try:
        lock.__enter__()
    except OSError:  # a read-only copy: nothing can be writing there
        yield
        return
    try:
        yield
    finally:
        lock.__exit__()


def _build_report(run_dirs: Sequence[str | Path], out: str | Path,
                  evaluation: str | Path | None, cache_dir: str | Path | None,
                  nnunet: Sequence[str], step: Step) -> ReportOutcome:
    from mbnas.reporting.front import front_section
    from mbnas.reporting.html import FigureRef, build_html
    from mbnas.reporting.progress_figure import plot_search_progress
    from mbnas.reporting.stats import FriedmanResult, WilcoxonReport, friedman, wilcoxon_vs_best
    from mbnas.reporting.table import build_table, write_table

    record, evals, eval_dir = None, [], None
    if evaluation is not None:
        eval_dir = Path(evaluation).resolve()
        record, evals = read_evaluation(eval_dir)
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
        "Search progress of every run: each evaluation's score (dots) and the best so far.")
    step.advance(info="search progress figure")
    for r in runs:
        add(draw_best(r, figs / f"architecture_{slug(r.name)}"),
            f"Best network of {r.label} (search score {_score(r.best.get('score'))}): "
            f"{architecture_text(r.genotype)}.")
    step.advance(info=f"{len(runs)} architecture drawing(s)")
    front_html, front_files = front_section(  # cost-aware runs
        [(r.label, r.files.read_front(), log) for r, log in zip(runs, logs, strict=True)],
        evals, figs, out, add)
    files += front_files
    step.advance(info="Pareto front")
    from mbnas.reporting.suspect import constant_search_notes, suspect_notes

    notes += constant_search_notes([(r.label, log) for r, log in zip(runs, logs, strict=True)])
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


def _score(x: Any) -> str:
    return "n/a" if x is None else f"{float(x):.4f}"


def draw_best(run: SearchRun, prefix: Path) -> list[Path]:
    """The architecture picture of a run's best network (PNG and SVG), drawn by its
    language's codec; for a language that draws nothing, its variables as a table."""
    from mbnas.spaces.languages import codec_of, describe

    codec = codec_of(run.genotype)
    if codec is None:
        return []
    architecture = codec.decode(run.genotype)
    title = f"{run.name}: best network ({architecture.key})"
    if codec.draw is not None:
        return list(codec.draw(architecture, prefix, title))
    from mbnas.reporting.figures import plt, save_figure

    rows = list((describe(run.genotype) or {}).items())
    columns = list(dict.fromkeys(v for _, node in rows for v in node))
    fig, ax = plt.subplots(figsize=(1.5 + 1.2 * len(columns), 0.9 + 0.3 * len(rows)))
    ax.axis("off")
    ax.set_title(title, fontsize=9)
    ax.table(cellText=[[node.get(v, "") for v in columns] for _, node in rows],
             rowLabels=[g for g, _ in rows], colLabels=columns, loc="center")
    return save_figure(fig, prefix)


def dataset_info(run: SearchRun, evaluation: EvaluationFile | None) -> dict[str, Any]:
    """Name, path, number of cases and cases per site of the dataset."""
    info: dict[str, Any] = {"path": run.data_dir}
    sites: dict[str, int] = {}
    try:
        from mbnas.data import read_dataset

        ds = read_dataset(run.data_dir)
        info.update(name=ds.name, cases=len(ds.cases))
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

            ds = read_dataset(dataset)
            c, k = len(ds.channel_names), len(ds.label_names)
        except MbnasError:
            continue
        cost = cost_report(cost_model(r.genotype, c, k, p.base_channels), p.image_size, c, k,
                           memory=False)
        out[r.name] = (f"{cost.params / 1e6:.3g} M params; {cost.macs / 1e6:.3g} MMAC "
                       f"at {p.image_size}x{p.image_size} (base channels {p.base_channels})")
    return out


def example_segmentations(evaluation: EvaluationFile, evals: Sequence[ModelEvaluation],
                          eval_dir: Path, out_prefix: Path,
                          cache_dir: str | Path | None = None) -> tuple[list[Path], str]:
    """Predict one validation slice with each model's fold-0, seed-0 network and draw it.

    The networks are read from the models' exported folders, as `mbnas predict` reads
    them (checksums checked). The slice: of the first validation case of fold 0, the
    one with the most foreground.
    """
    from mbnas.commands.common.dataset import training_data
    from mbnas.metrics import label_dice
    from mbnas.predict.model_folder import load_model_folder
    from mbnas.predict.segment import Segmenter
    from mbnas.reporting.figures import plot_example_segmentations
    from mbnas.training.runs import weights_name

    protocol = evaluation.protocol
    data = training_data(evaluation.data_dir, cache_dir or evaluation.cache_dir,
                         protocol.image_size, evaluation.sites_file, protocol.normalisation,
                         protocol.target_spacing)
    case_id = evaluation.folds[0][0]
    rows = data.case_slices(case_id)
    labels = data.labels[rows]
    k = rows.start + int(np.argmax((labels > 0).reshape(len(labels), -1).sum(1)))
    image, ref = data.images[k], data.labels[k]
    first = weights_name(0, 0)
    preds, captions = {}, {}
    for e in evals:
        details = evaluation.details.get(e.name)
        if details is None or not (eval_dir / details.model_dir / first).is_file():
            continue
        model = load_model_folder(eval_dir / details.model_dir).member(first)
        pred = Segmenter(model, "cpu").predict_slices(image[None])[0]
        preds[e.name] = pred
        # a prediction covering the whole slice has no contour: say how much it covers
        slice_dice = float(label_dice(pred, ref, data.n_classes).mean())
        captions[e.name] = (f"slice Dice {slice_dice:.3f}, "
                            f"{100 * float((pred > 0).mean()):.0f}% predicted foreground")
    if not preds:
        raise ConfigError("no model has weights of fold 0, seed 0")
    title = (f"{case_id}, slice {int(data.slice_index[k])} (fold 0 validation case), "
             "networks of fold 0, seed 0")
    # The title goes into the page's caption: a figure title overlaps the two-line panel
    # titles of plot_example_segmentations.
    paths = plot_example_segmentations(
        radiological(image[0]), radiological(ref),
        {n: radiological(p) for n, p in preds.items()}, out_prefix, captions=captions,
        class_names={c: n for c, n in data.label_names.items() if c != 0})
    return paths, ("Example segmentations: reference (green) and prediction (pink) "
                   f"contours on {title}; radiological view (anterior up, the patient's "
                   "right on the left).")


def radiological(slice_ra: np.ndarray) -> np.ndarray:
    """An axial slice (rows along R, columns along A, see ``mbnas.data.preprocess``) as
    shown in radiology: anterior at the top, the patient's right on the viewer's left."""
    return np.asarray(slice_ra).T[::-1, ::-1]


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
