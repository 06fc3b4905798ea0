"""Where a driver gets its slices and folds from (shared by search, train and evaluate)."""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path

from mbnas.data import PreprocessConfig, load_or_create_splits, load_slices
from mbnas.data.sites import (
    load_or_create_site_splits,
    read_sites_csv,
    whole_site_warnings,
    with_sites,
)
from mbnas.data.slices import SliceData


def default_cache_dir() -> Path:
    """``$MBNAS_CACHE``, else ``~/.cache/mbnas``: preprocessed slices are shared by runs."""
    return Path(os.environ.get("MBNAS_CACHE") or Path.home() / ".cache" / "mbnas")


def training_data(data_dir: str | Path, cache_dir: str | Path | None, image_size: int,
                  sites_file: str | Path | None = None,
                  normalisation: tuple[str, ...] = (), target_spacing: float = 0.0,
                  allow_cropped_labels: bool = False) -> SliceData:
    """The dataset's slices at ``image_size``, preprocessed once and cached; with
    ``sites_file`` (``case,site`` CSV) the cases' sites are taken from it, with
    ``normalisation`` the channels are normalised so (``mbnas.data.normalise``), with
    ``target_spacing`` the slices are resampled to it (``mbnas.data.spacing``); a case
    whose labels that window drops entirely is an error unless ``allow_cropped_labels``."""
    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    data = load_slices(data_dir, cache, PreprocessConfig(
        size=image_size, normalisation=normalisation, target_spacing=target_spacing),
        allow_cropped_labels=allow_cropped_labels)
    if sites_file is not None:
        data = with_sites(data, read_sites_csv(sites_file, data.case_ids))
    return data


def fold_case_ids(splits_path: Path, data: SliceData, n_folds: int, seed: int,
                  split: str = "case") -> tuple[tuple[str, ...], ...]:
    """Validation case ids of each fold, from ``splits.json`` (created once, then reused).

    ``split`` is ``case`` (patient-level folds), ``site`` (leave-site-out) or
    ``group-site`` (folds keeping sites whole); see :mod:`mbnas.data.sites`.
    """
    sites = {c.case_id: c.site for c in data.cases}
    if split != "case":
        folds = load_or_create_site_splits(splits_path, sites, split, n_folds, seed)
        return tuple(tuple(f.val) for f in folds)
    val = tuple(tuple(f.val) for f in load_or_create_splits(splits_path, data.case_ids,
                                                            n_folds, seed))
    for line in whole_site_warnings(val, sites):
        logging.getLogger("mbnas.data").warning("%s", line)  # into the run's log
        warnings.warn(line, UserWarning, stacklevel=2)
    return val
