"""ASSD: the average symmetric surface distance, in mm (MONAI's
``compute_average_surface_distance``), registered as a metric.

The mean of the distances from each surface voxel of one mask to the other mask's surface,
over both surfaces. Empty masks follow the distance policy of HD95: 0 when both are empty,
the image diagonal when exactly one is.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mbnas.metrics.masks import image_diagonal_mm
from mbnas.metrics.registry import register_metric


@register_metric("assd", label="ASSD", header="ASSD (mm)", unit="mm",
                 higher_is_better=False, decimals=3, both_empty=0.0,
                 one_empty=image_diagonal_mm, slice_classes="max",
                 about="average symmetric surface distance")
def assd(pred: np.ndarray, ref: np.ndarray, spacing: Sequence[float]) -> float:
    """ASSD in mm of two non-empty binary masks (the registry handles empty ones)."""
    from monai.metrics import compute_average_surface_distance

    from mbnas.metrics.binary import monai_input, quiet_monai

    with quiet_monai():
        out = compute_average_surface_distance(
            monai_input(pred), monai_input(ref), include_background=True, symmetric=True,
            distance_metric="euclidean", spacing=list(spacing))
    return float(out[0, 0])
