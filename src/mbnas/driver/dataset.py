"""Where a driver gets its slices and folds from (shared by search, train and evaluate)."""

from __future__ import annotations

import os
from pathlib import Path

from mbnas.data import PreprocessConfig, load_or_create_splits, load_slices
from mbnas.data.slices import SliceData


def default_cache_dir() -> Path:
    """``$MBNAS_CACHE``, else ``~/.cache/mbnas``: preprocessed slices are shared by runs."""
    return Path(os.environ.get("MBNAS_CACHE") or Path.home() / ".cache" / "mbnas")


def training_data(data_dir: str | Path, cache_dir: str | Path | None, image_size: int
                  ) -> SliceData:
    """The dataset's slices at ``image_size``, preprocessed once and cached."""
    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    return load_slices(data_dir, cache, PreprocessConfig(size=image_size))


def fold_case_ids(splits_path: Path, data: SliceData, n_folds: int, seed: int
                  ) -> tuple[tuple[str, ...], ...]:
    """Validation case ids of each fold, from ``splits.json`` (created once, then reused)."""
    folds = load_or_create_splits(splits_path, data.case_ids, n_folds, seed)
    return tuple(tuple(f.val) for f in folds)
