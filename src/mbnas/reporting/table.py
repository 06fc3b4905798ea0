"""Table 1 of the paper: one row per model, mean +/- std, best value per column in bold.

Statistics convention (the paper: "Standard deviations are calculated based on single
seed scores on all 5-folds"):

* the **mean** is over every validation case of every (seed, fold) run;
* a **per-seed score** is the mean over all validation cases of all folds of one seed;
* the **std** is the *sample* standard deviation (``numpy.std(..., ddof=1)``) of the
  per-seed scores: the seeds are a sample of possible initialisations. With a single
  seed there is no spread to report and the std is None (the cell shows the plain mean).

Best values are chosen on the *displayed* (rounded) means, so two models that print
the same value are both bold.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from mbnas.io import atomic_write_json, atomic_write_text
from mbnas.metrics.registry import metric_definitions
from mbnas.reporting.numbers import mean_std_text
from mbnas.reporting.report_data import CaseScore, ModelEvaluation, ReportError

__all__ = ["STD_DDOF", "Cell", "Column", "Row", "Table1", "seed_mean_std", "build_table",
           "write_table", "check_models"]

#: Delta degrees of freedom of the std over per-seed scores (1: sample std).
STD_DDOF = 1


@dataclass(frozen=True)
class Column:
    """A Table 1 column: its key, header, direction and whether it has a std."""

    key: str
    header: str
    higher_is_better: bool
    has_std: bool


@dataclass(frozen=True)
class Cell:
    """One table value: raw mean and std (None when absent), display text, bold flag."""

    mean: float | None
    std: float | None
    text: str
    best: bool = False


@dataclass(frozen=True)
class Row:
    """One model's row: its name, kind, counts and cells in column order."""

    model: str
    kind: str
    n_seeds: int
    n_folds: int
    n_cases: int
    cells: tuple[Cell, ...]


@dataclass(frozen=True)
class Table1:
    """Table 1 (and the per-class table) ready to render as Markdown, CSV, JSON or HTML."""

    columns: tuple[Column, ...]
    rows: tuple[Row, ...]
    note: str
    class_columns: tuple[Column, ...] = ()
    class_rows: tuple[tuple[str, str, tuple[Cell, ...]], ...] = ()  # (model, class, cells)

    def to_markdown(self) -> str:
        """A GitHub-flavoured Markdown table with bold best values and the std note."""
        lines = [_md_row(["Model", *(c.header for c in self.columns)]),
                 _md_row(["---"] * (len(self.columns) + 1))]
        lines += [_md_row([r.model, *map(_md_cell, r.cells)]) for r in self.rows]
        out = "\n".join(lines) + f"\n\n{self.note}\n"
        if self.class_rows:
            lines = [_md_row(["Model", "Class", *(c.header for c in self.class_columns)]),
                     _md_row(["---"] * (len(self.class_columns) + 2))]
            lines += [_md_row([m, k, *map(_md_cell, cells)]) for m, k, cells in self.class_rows]
            out += "\nPer class:\n\n" + "\n".join(lines) + "\n"
        return out

    def to_csv(self) -> str:
        """Raw numbers (unrounded), one row per model."""
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        head = ["model", "kind", "n_seeds", "n_folds", "n_cases"]
        for c in self.columns:
            head += [f"{c.key}_mean", f"{c.key}_std"] if c.has_std else [c.key]
        w.writerow(head)
        for r in self.rows:
            vals: list[Any] = [r.model, r.kind, r.n_seeds, r.n_folds, r.n_cases]
            for c, cell in zip(self.columns, r.cells, strict=True):
                vals += [_raw(cell.mean), _raw(cell.std)] if c.has_std else [_raw(cell.mean)]
            w.writerow(vals)
        return buf.getvalue()

    def to_dict(self) -> dict[str, Any]:
        def cells(cs: tuple[Cell, ...], cols: tuple[Column, ...]) -> dict[str, Any]:
            return {c.key: {"mean": x.mean, "std": x.std, "text": x.text, "best": x.best}
                    for c, x in zip(cols, cs, strict=True)}

        return {
            "columns": [vars(c) for c in self.columns],
            "rows": [{"model": r.model, "kind": r.kind, "n_seeds": r.n_seeds,
                      "n_folds": r.n_folds, "n_cases": r.n_cases,
                      "cells": cells(r.cells, self.columns)} for r in self.rows],
            "note": self.note,
            "std_ddof": STD_DDOF,
            "per_class": [{"model": m, "class": k, "cells": cells(cs, self.class_columns)}
                          for m, k, cs in self.class_rows],
        }


def _md_row(values: Sequence[str]) -> str:
    return "| " + " | ".join(values) + " |"


def _md_cell(cell: Cell) -> str:
    return f"**{cell.text}**" if cell.best else cell.text


def _raw(x: float | None) -> str:
    return "" if x is None else repr(float(x))


def check_models(evals: Sequence[ModelEvaluation]) -> None:
    """Raise :class:`ReportError` for no models or duplicate model names."""
    if not evals:
        raise ReportError("no model evaluations to report: run `mbnas evaluate` first")
    names = [e.name for e in evals]
    dups = sorted({n for n in names if names.count(n) > 1})
    if dups:
        raise ReportError(f"model names must be unique in a report; repeated: {dups}")


def seed_mean_std(cases: Sequence[CaseScore], value: Callable[[CaseScore], float]
                  ) -> tuple[float | None, float | None]:
    """Mean over all cases and sample std over per-seed means (see the module docstring).

    Returns:
        (mean, std); mean is None without cases, std is None with fewer than 2 seeds.
    """
    if not cases:
        return None, None
    by_seed: dict[int, list[float]] = {}
    for c in cases:
        by_seed.setdefault(c.seed, []).append(value(c))
    mean = float(np.mean([value(c) for c in cases]))
    seed_scores = [float(np.mean(v)) for v in by_seed.values()]
    std = float(np.std(seed_scores, ddof=STD_DDOF)) if len(seed_scores) > 1 else None
    return mean, std


def _fmt_cost(x: float) -> str:
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:.3g}"


def _metric_cell(mean: float | None, std: float | None, decimals: int, std_decimals: int
                 ) -> Cell:
    if mean is None or math.isnan(mean):  # NaN: a metric the source did not measure
        return Cell(None, None, "n/a")
    return Cell(mean, std, mean_std_text(mean, std, decimals, std_decimals))


def _cost_cell(x: float | None, suffix: str = "") -> Cell:
    return Cell(None, None, "n/a") if x is None else Cell(float(x), None, _fmt_cost(x) + suffix)


def _shown(cell: Cell) -> float | None:
    """The mean as displayed (so that equal-looking values tie for best)."""
    if cell.mean is None:
        return None
    head = cell.text.split(" ")[0].replace(",", "")
    try:
        return float(head)
    except ValueError:
        return cell.mean


def _mark_best(rows: list[list[Cell]], columns: Sequence[Column]) -> list[tuple[Cell, ...]]:
    for j, col in enumerate(columns):
        shown = [_shown(r[j]) for r in rows]
        present = [v for v in shown if v is not None and math.isfinite(v)]
        if not present:
            continue
        best = max(present) if col.higher_is_better else min(present)
        for r, v in zip(rows, shown, strict=True):
            if v == best:
                r[j] = Cell(r[j].mean, r[j].std, r[j].text, True)
    return [tuple(r) for r in rows]


def _metric_columns(tolerance_mm: float) -> tuple[Column, ...]:
    """One column per registered metric, its header the metric's registered one."""
    return tuple(Column(d.column, d.column_header(tolerance_mm=tolerance_mm),
                        d.higher_is_better, True) for d in metric_definitions())


def _metric_cells(cases: Sequence[CaseScore], get: Callable[[CaseScore, str], float]
                  ) -> list[Cell]:
    """A cell per registered metric: mean ± std over the cases that measured it."""
    cells = []
    for d in metric_definitions():
        measured = [c for c in cases if not math.isnan(get(c, d.name))]
        cells.append(_metric_cell(*seed_mean_std(measured, partial(_value, get, d.name)),
                                  d.decimals, 3))
    return cells


PAPER_MMAC_HEAD = "MMAC (32x32, paper's convention)"
PAPER_MMAC_NOTE = (
    "MMAC: mega multiply-accumulate operations per forward pass at 32x32 in the paper's "
    "convention, thop 0.0.31 as the authors counted (each 2x2 stride-2 transposed "
    "convolution counted 4x, BatchNorm and LeakyReLU counted); the report's Table 1 has "
    "the true counts.")
TRUE_MMAC_NOTE = (
    "MMAC: mega multiply-accumulate operations per forward pass, true counts (each "
    "multiply-accumulate once, torch.utils.flop_counter); the paper-comparable table has "
    "them in the paper's convention (thop 0.0.31).")


def build_table(evals: Sequence[ModelEvaluation], tolerance_mm: float = 2.0,
                paper: bool = False) -> Table1:
    """Compute Table 1 from the evaluations, in their order.

    Args:
        evals: The models (baselines and best searched networks); names must be unique.
        tolerance_mm: The Surface Dice tolerance the cases were scored with (header only).
        paper: The paper-comparable table: each model's ``paper_cases`` (per 2D slice on
            the training grid) instead of its ``cases`` (per case in 3D on the original
            grid).
    """
    check_models(evals)
    if paper:
        evals = [dataclasses.replace(e, cases=e.paper_cases) for e in evals]
    sizes = {e.cost.macs_input_size for e in evals if e.cost.macs is not None}
    common = next(iter(sizes)) if len(sizes) == 1 else None
    mmac_head = f"MMAC ({'x'.join(map(str, common))})" if common else \
        "MMAC (input size per cell)"
    # The paper's MMAC column is at 32x32; add it unless the training size is already 32.
    with_32 = not paper and (common is None or tuple(common) != (32, 32)) and not (
        common is not None and len(common) == 3)  # 3D networks have no 32x32 figure
    widths = any(e.width for e in evals)
    mmac_columns = (
        (Column("mmac_paper", PAPER_MMAC_HEAD, False, False),) if paper else
        (Column("mmac", mmac_head, False, False),
         *([Column("mmac_32", "MMAC (32x32)", False, False)] if with_32 else [])))
    columns = (*_metric_columns(tolerance_mm), *mmac_columns,
               Column("params", "#Params (x10^6)", False, False),
               *([Column("width", "Trained width", False, False)] if widths else []))
    raw_rows, rows_meta = [], []
    for e in evals:
        cost = e.cost
        size = cost.macs_input_size
        suffix = f" @{'x'.join(map(str, size))}" if common is None and size else ""
        cells = _metric_cells(e.cases, lambda c, m: c.value(m))
        mmac_cells = [_cost_cell(None if cost.macs_paper is None else cost.macs_paper / 1e6)] \
            if paper else [
                _cost_cell(None if cost.macs is None else cost.macs / 1e6, suffix),
                *([_cost_cell(None if cost.macs_32 is None else cost.macs_32 / 1e6)]
                  if with_32 else [])]
        cells += [
            *mmac_cells,
            _cost_cell(None if cost.params is None else cost.params / 1e6),
            *([Cell(None, None, e.width or "n/a")] if widths else []),  # never bold
        ]
        raw_rows.append(cells)
        rows_meta.append((e.name, e.kind, len({c.seed for c in e.cases}),
                          len({c.fold for c in e.cases}), len(e.cases)))
    marked = _mark_best(raw_rows, columns)
    rows = tuple(Row(*meta, cells) for meta, cells in zip(rows_meta, marked, strict=True))
    n_seeds = sorted({r.n_seeds for r in rows})
    where = ("Paper-comparable: each validation slice scored on its own on the training grid "
             "(a class absent from both slice and prediction counts as perfect; HD95 the "
             "maximum over classes), averaged over each case's slices. " if paper else
             "Per validation case in 3D on the scan's original grid and spacing. ")
    note = where + (
        "Mean over all validation cases of all seeds x folds. ± is the sample standard "
        "deviation (ddof=1) of the single-seed scores, a single-seed score being the mean "
        "over all validation cases of all folds of that seed "
        f"(seeds per model: {', '.join(map(str, n_seeds))}). Best value per column in bold "
        f"({_best_note(tolerance_mm)}). {_metric_note(tolerance_mm)}"
        + (PAPER_MMAC_NOTE if paper else TRUE_MMAC_NOTE)
        + " A value without ± comes from one seed (no spread to report)."
    )
    if paper:
        note = (empty_slices_warning(evals) + " " + note).lstrip()
    class_columns, class_rows = _per_class(evals, tolerance_mm)
    return Table1(columns, rows, note, class_columns, class_rows)


def _best_note(tolerance_mm: float) -> str:
    """"highest DSC and SD; lowest HD95, MMAC and #Params", from the registered metrics."""
    defs = metric_definitions()
    high = [d.column_header(tolerance_mm=tolerance_mm).split(" (")[0]
            for d in defs if d.higher_is_better]
    low = [d.column_header(tolerance_mm=tolerance_mm).split(" (")[0]
           for d in defs if not d.higher_is_better] + ["MMAC", "#Params"]
    return (f"highest {_and(high)}; " if high else "") + f"lowest {_and(low)}"


def _and(words: Sequence[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def _metric_note(tolerance_mm: float) -> str:
    """What each metric column is, where its short header does not say it."""
    parts = []
    for d in metric_definitions():
        short = d.column_header(tolerance_mm=tolerance_mm).split(" (")[0]
        unit = f" in {d.unit}" if d.unit else ""
        tolerance = f" at {tolerance_mm:g} mm" if "tolerance_mm" in d.settings else ""
        parts.append(f"{short}: {d.label}{tolerance}{unit}" if short != d.label
                     else f"{short}{unit}")
    return "; ".join(parts) + "; "


#: Above this share of slices empty in both prediction and reference, the per-slice table
#: is mostly the paper's "perfect empty slice" convention, not segmentation quality.
EMPTY_SLICES_WARN = 0.5


def empty_slices_warning(evals: Sequence[ModelEvaluation]) -> str:
    """One line when over half the scored slices are empty in prediction and reference."""
    cases = [c for e in evals for c in e.cases if c.slices and c.both_empty is not None]
    total = sum(c.slices or 0 for c in cases)
    if not total:
        return ""
    share = sum(c.both_empty or 0 for c in cases) / total
    if share <= EMPTY_SLICES_WARN:
        return ""
    return (f"Warning: {share:.0%} of the scored slices are empty in both prediction and "
            "reference and count as perfect here; compare models on the 3D table.")


def _per_class(evals: Sequence[ModelEvaluation], tolerance_mm: float
               ) -> tuple[tuple[Column, ...], tuple[tuple[str, str, tuple[Cell, ...]], ...]]:
    """Per-class metric rows, only when some model scores more than one class."""
    classes: list[str] = []
    for e in evals:
        for c in e.cases:
            classes += [k for k in c.per_class if k not in classes]
    if len(classes) < 2:
        return (), ()
    columns = _metric_columns(tolerance_mm)
    out = []
    for k in classes:
        keyed: list[list[Cell]] = []
        names = []
        for e in evals:
            cases = [c for c in e.cases if k in c.per_class]
            if not cases:
                continue  # this model has no per-class scores for k
            keyed.append(_metric_cells(cases, partial(_class_value, k)))
            names.append(e.name)
        out += [(n, k, cells) for n, cells in zip(names, _mark_best(keyed, columns), strict=True)]
    return columns, tuple(out)


def write_table(evals: Sequence[ModelEvaluation], out_dir: str | Path,
                tolerance_mm: float = 2.0, stem: str = "table1", paper: bool = False
                ) -> list[Path]:
    """Write Table 1 as ``<stem>.md``, ``.csv`` and ``.json`` under ``out_dir``.

    Returns:
        The three paths written (atomically).
    """
    table = build_table(evals, tolerance_mm, paper)
    out_dir = Path(out_dir)
    paths = [out_dir / f"{stem}.md", out_dir / f"{stem}.csv", out_dir / f"{stem}.json"]
    atomic_write_text(paths[0], table.to_markdown())
    atomic_write_text(paths[1], table.to_csv())
    atomic_write_json(paths[2], table.to_dict())
    return paths


def _value(get: Callable[[Any, str], float], name: str, case: Any) -> float:
    return get(case, name)


def _class_value(k: str, case: CaseScore, metric: str) -> float:
    """The value of ``metric`` for class ``k`` of a case (NaN: not measured)."""
    return float(case.per_class[k].get(metric, math.nan))
