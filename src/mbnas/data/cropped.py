"""Labelled voxels lost to the ``target_spacing`` window: counted, warned about, refused.

A window of ``size`` px at ``target_spacing`` mm covers ``size * target_spacing`` mm; the
preprocessing places it to keep each case's labels (``mbnas.data.spacing.foreground_start``)
but a structure larger than the window, or scattered wider, still loses voxels. Each
case's counts are kept in ``CaseInfo.foreground``; a case losing more than
:data:`CROPPED_WARN` is warned about, naming a setting that keeps it, and a case losing all
of its labelled voxels (it would train and validate as empty) is an error unless
``--allow-cropped-labels``.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from mbnas.errors import DatasetError

if TYPE_CHECKING:
    from mbnas.data.preprocess import PreprocessConfig
    from mbnas.data.slices import SliceData

__all__ = ["CROPPED_WARN", "check_cropped_labels", "cropped_label_lines", "label_extent"]

#: A case losing more than this share of its labelled voxels to cropping is warned about.
CROPPED_WARN = 0.02


def cropped_label_lines(data: SliceData, config: PreprocessConfig) -> list[tuple[bool, str]]:
    """(lost everything, message) for each case whose window dropped more than
    :data:`CROPPED_WARN` of its labelled voxels, naming a setting that keeps them."""
    out = []
    for case in data.cases:
        if case.foreground is None or case.cropped_fraction <= CROPPED_WARN:
            continue
        kept, total = case.foreground
        span = case.extent_mm or 0.0
        keep = (f"--target-spacing {math.ceil(100 * span / config.size) / 100:.2f} (its "
                f"labels span {span:.0f} mm) or --image-size "
                f"{16 * math.ceil(span / config.target_spacing / 16)}" if span else
                "a larger --target-spacing or --image-size")
        out.append((kept == 0, f"{case.case_id}: {total - kept} of {total} labelled voxels "
                               f"({100 * case.cropped_fraction:.0f} %) fall outside the "
                               f"{config.size} px window at {config.target_spacing:g} mm "
                               f"({config.size * config.target_spacing:.0f} mm); {keep} "
                               "keeps them"))
    return out


def check_cropped_labels(data: SliceData, config: PreprocessConfig, allow: bool = False,
                         log: Callable[[str], None] | None = None) -> None:
    """Warn about each case that cropping cost labelled voxels; refuse a case that lost
    all of them unless ``allow`` (``--allow-cropped-labels``)."""
    lines = cropped_label_lines(data, config)
    lost = [text for everything, text in lines if everything]
    if lost and not allow:
        raise DatasetError(f"{lost[0]}; the case would train and validate as empty "
                           f"({len(lost)} such case(s)); pass --allow-cropped-labels to go on")
    for _, text in lines:
        warnings.warn(f"cropped labels: {text}", RuntimeWarning, stacklevel=3)
        if log is not None:
            log(f"warning: cropped labels: {text}")
        else:  # into the run's log (search.log, evaluate.log) when a command runs
            logging.getLogger("mbnas").warning("cropped labels: %s", text)



def label_extent(labels: np.ndarray) -> float:
    """The larger side (px) of the bounding box of labels (Z, H, W) in-plane (0: none)."""
    mask = labels.any(axis=0)
    if not mask.any():
        return 0.0
    rows, cols = np.flatnonzero(np.any(mask, axis=1)), np.flatnonzero(np.any(mask, axis=0))
    return float(max(rows[-1] - rows[0], cols[-1] - cols[0]) + 1)
