"""Checks made before a run folder is written, so a mistaken setting never locks a folder.

A search or evaluation validates every input (dataset, folds, device, output location)
first; only a run that can start writes ``config.yaml`` into its folder.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from mbnas.data.folds import make_splits, read_splits
from mbnas.data.slices import SliceData
from mbnas.errors import ConfigError
from mbnas.training.executors import DEFAULT_EXECUTOR, check_executor


def check_output_dir(out: str | Path, what: str = "--out") -> Path:
    """Refuse an output folder that is an existing file or whose location is not writable."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out}: {what} is an existing file, not a folder; choose a folder")
    parent = out
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise ConfigError(f"{parent}: {what} lies under a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(f"{parent}: not writable; choose another {what}")
    return out


def check_outside_dataset(out: str | Path, data_dir: str | Path, what: str = "--out") -> None:
    """Refuse an output folder that is the dataset folder or lies in its image or label
    folders: run files would land among the scans (and `mbnas check` warn about each)."""
    out, data = Path(out).resolve(), Path(data_dir).resolve()
    if out == data:
        raise ConfigError(f"{out}: {what} is the dataset folder; choose a folder outside "
                          "it (e.g. beside it)")
    if out.is_relative_to(data):
        first = out.relative_to(data).parts[0]
        if first.casefold().startswith(("images", "labels")):
            raise ConfigError(f"{out}: {what} lies in the dataset's {first}/ folder, among "
                              "the scans; choose a folder outside it")


def check_device(device: str, executor: str = DEFAULT_EXECUTOR) -> None:
    """Refuse a device this machine does not have (runs trained here only: the workers of
    a remote executor, such as Ray's, may have it)."""
    if device in ("auto", "cpu") or check_executor(executor).remote:
        return
    from mbnas.training.device import select_device

    select_device(device)


def check_folds(splits_path: Path, data: SliceData, n_folds: int, seed: int) -> None:
    """Refuse folds the dataset cannot fill, before anything is written."""
    if splits_path.is_file():
        folds = read_splits(splits_path)
        if len(folds) != n_folds:
            raise ConfigError(f"{splits_path} holds {len(folds)} folds but {n_folds} were "
                              "asked for; use the same number of folds or another --out")
        return
    make_splits(list(data.case_ids), n_folds, seed)


def with_fingerprint(config: dict[str, Any], fingerprint: dict[str, Any]) -> dict[str, Any]:
    """The config as saved in ``config.yaml``: with the dataset fingerprint's digest."""
    return {**config, "data_fingerprint": fingerprint["digest"]}
