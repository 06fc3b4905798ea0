"""The report's "Empty validation data" section: how many validation slices and cases
had no foreground, and how few slices the smallest structures span.

On real scans most slices are empty (26 % of the lung sample's slices hold tumour) and a
validation case may have a tumour on one or two slices only. The scores treat them as
:mod:`mbnas.metrics` says: the search's pooled Dice sums counts over the fold's slices,
so empty slices add nothing but their false positives; Table 1's 3D case scores and the
paper's per-slice scores use the empty-mask policy (both empty: Dice 1, HD95 0; one empty:
Dice 0, HD95 the image diagonal), so the paper variant counts every empty slice that the
network leaves empty as perfect. This section gives the counts a reader needs to judge that.

A case can be empty for two reasons, told apart here: no labelled voxel in the scan, or
labelled voxels that the ``target_spacing`` window cropped away (``CaseInfo.foreground``;
kept only with ``--allow-cropped-labels``).
"""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any

from mbnas.commands.common.evaluation_file import EvaluationFile
from mbnas.data.cropped import CROPPED_WARN
from mbnas.data.slices import CaseInfo

# A case whose foreground spans at most this many slices is a "small structure".
FEW_SLICES = 2


def emptied_by_preprocessing(case: CaseInfo) -> int:
    """Labelled voxels of a case that preprocessing cropped away (0: none, or none in
    the scan)."""
    if case.foreground is None:
        return 0
    kept, total = case.foreground
    return total - kept


def empty_counts(evaluation: EvaluationFile, cache_dir: str | Path | None) -> dict[str, Any]:
    """Counts over the validation cases of every fold (each case is validated once)."""
    from mbnas.commands.common.dataset import training_data

    protocol = evaluation.protocol
    data = training_data(evaluation.data_dir, cache_dir or evaluation.cache_dir,
                         protocol.image_size, evaluation.sites_file, protocol.normalisation,
                         protocol.target_spacing, allow_cropped_labels=True)
    has_fg = data.labels.reshape(len(data.labels), -1).max(axis=1) > 0
    index = {c.case_id: k for k, c in enumerate(data.cases)}
    folds: list[dict[str, Any]] = []
    for f, cases in enumerate(evaluation.folds):
        per_case = {c: int(has_fg[data.case_index == index[c]].sum()) for c in cases
                    if c in index}
        slices = int(sum((data.case_index == index[c]).sum() for c in per_case))
        folds.append({"fold": f, "cases": len(per_case), "slices": slices,
                      "empty_slices": slices - sum(per_case.values()),
                      "empty_cases": sorted(c for c, n in per_case.items() if n == 0),
                      "emptied_cases": {c: emptied_by_preprocessing(data.cases[index[c]])
                                        for c, n in sorted(per_case.items()) if n == 0
                                        and emptied_by_preprocessing(data.cases[index[c]])},
                      "few_slice_cases": {c: n for c, n in per_case.items()
                                          if 0 < n <= FEW_SLICES}})
    slices = sum(f["slices"] for f in folds)
    empty = sum(f["empty_slices"] for f in folds)
    return {"folds": folds, "slices": slices, "empty_slices": empty,
            "empty_fraction": empty / slices if slices else float("nan"),
            "cases": sum(f["cases"] for f in folds),
            "empty_cases": sum(len(f["empty_cases"]) for f in folds),
            "few_slice_cases": sum(len(f["few_slice_cases"]) for f in folds),
            "few_slices": FEW_SLICES,
            # cases whose --target-spacing window dropped labelled voxels: share dropped
            "cropped_cases": {c.case_id: round(c.cropped_fraction, 4) for c in data.cases
                              if c.cropped_fraction > CROPPED_WARN}}


def empty_html(counts: dict[str, Any]) -> str:
    """The section's HTML: one summary sentence and one row per fold."""
    rows = "".join(
        f"<tr><td>{f['fold']}</td><td>{f['cases']}</td><td>{f['slices']}</td>"
        f"<td>{f['empty_slices']}</td><td>{escape(_empty_cases(f)) or '-'}</td>"
        f"<td>{escape(', '.join(f'{c} ({n})' for c, n in f['few_slice_cases'].items()) or '-')}"
        "</td></tr>" for f in counts["folds"])
    share = counts["empty_fraction"]
    emptied = sum(len(f.get("emptied_cases", {})) for f in counts["folds"])
    why = (f" ({counts['empty_cases'] - emptied} empty in the scan, {emptied} emptied by "
           "preprocessing: their labelled voxels lay outside the --target-spacing window, "
           "so their scores measure nothing of the tumour)" if emptied else "")
    return (f"<p>{counts['empty_slices']} of {counts['slices']} validation slices "
            f"({100 * share:.0f} %) have no foreground; {counts['empty_cases']} of "
            f"{counts['cases']} validation cases are empty{why}, and "
            f"{counts['few_slice_cases']} "
            f"have foreground on at most {counts['few_slices']} slices. Table 1's 3D scores "
            "give a case with an empty reference Dice 1 only if the network predicts nothing "
            "(else 0); the per-slice (paper) variant scores every empty slice left empty as "
            "a perfect Dice 1, which lifts it when most slices are empty.</p>"
            f"{_cropped_sentence(counts)}"
            "<table><tr><th>fold</th><th>cases</th><th>slices</th><th>empty slices</th>"
            f"<th>empty cases</th><th>cases on &le; {counts['few_slices']} slices "
            f"(slices)</th></tr>{rows}</table>")


def _empty_cases(fold: dict[str, Any]) -> str:
    """``a (empty in the scan), b (emptied by preprocessing: 48 labelled voxels cropped)``."""
    emptied = fold.get("emptied_cases", {})  # absent from counts saved before it existed
    return ", ".join(
        f"{c} (emptied by preprocessing: {emptied[c]} labelled voxels cropped)" if c in emptied
        else f"{c} (empty in the scan)" for c in fold["empty_cases"])


def _cropped_sentence(counts: dict[str, Any]) -> str:
    """The cases whose labels the ``--target-spacing`` window cropped (none: nothing)."""
    cropped = counts.get("cropped_cases") or {}
    if not cropped:
        return ""
    listed = ", ".join(f"{escape(c)} ({100 * f:.0f} %)" for c, f in cropped.items())
    return (f"<p>Preprocessing cropped part of the labelled voxels of {len(cropped)} case(s): "
            f"{listed}; the --target-spacing window is smaller than their labelled "
            "structures, so their scores cover only the part kept.</p>")
