"""Report metrics of a trained run, per validation case, on the training grid.

Per case in 3D (Dice, HD95 and Surface Dice in mm), and under ``"paper"`` the paper's
per-slice metrics of the case (:func:`mbnas.metrics.slices.paper_slice_metrics`). The
evaluation replaces the 3D values with those on each scan's original grid
(``mbnas.commands.evaluate.original_grid``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mbnas.data.slices import SliceData
from mbnas.metrics import case_metrics
from mbnas.metrics.slices import paper_slice_metrics


def validation_metrics(pred: np.ndarray, val: SliceData, tolerance_mm: float) -> dict[str, Any]:
    """Metrics of every validation case, keyed by case id.

    Args:
        pred: Predicted labels of every slice of ``val``, (N, H, W), in ``val``'s order.
        val: The validation slices; each case's slices are stacked back into a volume
            and measured with the case's effective spacing (mm).
        tolerance_mm: Surface Dice tolerance.
    """
    out: dict[str, Any] = {}
    for case in val.cases:
        rows = val.case_slices(case.case_id)
        order = np.argsort(val.slice_index[rows])
        p, r = pred[rows][order], val.labels[rows][order]
        m = case_metrics(p, r, val.n_classes, case.spacing, tolerance_mm=tolerance_mm)
        out[case.case_id] = {**m.to_dict(), "paper": paper_slice_metrics(
            p, r, val.n_classes, case.spacing[1:], tolerance_mm)}
    return out
