"""Exported model folders and `mbnas predict`: segment new NIfTI scans with trained networks.

Public API:

* :func:`export_model`, :func:`load_model_folder`, :class:`ModelFolder`,
  :func:`normalisation_from_cache`: the model folder (``model.json`` + weights).
* :func:`predict`, :class:`PredictSummary`, :class:`Segmenter`, :func:`prepare_slices`:
  segmenting scans (``mbnas.inference.segment``).
* :func:`find_scans`, :func:`read_scan`, :class:`ScanFiles`, :class:`ScanError`: the
  accepted inputs (``mbnas.inference.scans``).
"""

from __future__ import annotations

from mbnas.inference.model_folder import (
    MODEL_FORMAT,
    ModelFolder,
    ModelFolderError,
    export_model,
    load_model_folder,
    normalisation_from_cache,
)
from mbnas.inference.scans import ScanError, ScanFiles, find_scans, read_scan
from mbnas.inference.segment import (
    PredictSummary,
    Segmenter,
    predict,
    predict_scan,
    prepare_slices,
)

__all__ = [
    "MODEL_FORMAT",
    "ModelFolder",
    "ModelFolderError",
    "PredictSummary",
    "ScanError",
    "ScanFiles",
    "Segmenter",
    "export_model",
    "find_scans",
    "load_model_folder",
    "normalisation_from_cache",
    "predict",
    "predict_scan",
    "prepare_slices",
    "read_scan",
]

