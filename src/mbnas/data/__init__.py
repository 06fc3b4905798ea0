"""The data layer: dataset formats, integrity checks, preprocessing, folds and phantoms."""

from __future__ import annotations

from mbnas.data.check import check_dataset, load_case, require_valid
from mbnas.data.folds import (
    Fold,
    leave_site_out_splits,
    load_or_create_splits,
    make_splits,
    read_splits,
    save_splits,
)
from mbnas.data.formats import CaseFiles, Dataset, read_dataset, scan_dataset
from mbnas.data.phantom import make_phantom
from mbnas.data.preprocess import PreprocessConfig, load_slices, preprocess
from mbnas.data.problems import Problem
from mbnas.data.slices import CaseInfo, SliceData

__all__ = [
    "CaseFiles",
    "CaseInfo",
    "Dataset",
    "Fold",
    "PreprocessConfig",
    "Problem",
    "SliceData",
    "check_dataset",
    "leave_site_out_splits",
    "load_case",
    "load_or_create_splits",
    "load_slices",
    "make_phantom",
    "make_splits",
    "preprocess",
    "read_dataset",
    "read_splits",
    "require_valid",
    "save_splits",
    "scan_dataset",
]
