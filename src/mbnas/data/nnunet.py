"""nnU-Net v2 conventions: datasets named by ID or name, and nnU-Net's own splits file.

* A dataset can be given as an nnU-Net ID (``9``, ``009``) or name
  (``Dataset009_Spleen``): it is then looked up under ``$nnUNet_raw``, as nnU-Net does.
  A path that exists always wins.
* ``mbnas search --splits nnUNet_preprocessed/Dataset009_Spleen/splits_final.json``
  copies nnU-Net's folds (a JSON list of ``{"train": [...], "val": [...]}``) into the run
  folder's ``splits.json`` before the search starts, so both tools cross-validate on the
  same folds; the search then reuses that file like any ``splits.json``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path

from mbnas.data.folds import check_splits, read_splits, save_splits
from mbnas.errors import ConfigError

_ID = re.compile(r"^\d{1,3}$")
_NAME = re.compile(r"^Dataset\d{3}_[^/\\]+$")


def resolve_dataset(spec: str | Path) -> Path:
    """A dataset folder from a path, an nnU-Net dataset ID or an nnU-Net dataset name.

    Raises:
        ConfigError: If ``spec`` is an ID or name but ``$nnUNet_raw`` is unset, or no
            (or more than one) dataset there matches.
    """
    path = Path(spec)
    text = str(spec)
    if path.exists() or not (_ID.match(text) or _NAME.match(text)):
        return path
    raw = os.environ.get("nnUNet_raw")  # noqa: SIM112 - nnU-Net's own variable name
    if not raw:
        raise ConfigError(f"dataset {text!r} is not a folder; as an nnU-Net dataset ID or name "
                          "it needs the environment variable nnUNet_raw")
    root = Path(raw)
    if _NAME.match(text):
        if not (root / text).is_dir():
            raise ConfigError(f"no dataset {text} in $nnUNet_raw ({root})")
        return root / text
    prefix = f"Dataset{int(text):03d}_"
    found = sorted(p for p in root.glob(f"{prefix}*") if p.is_dir()) if root.is_dir() else []
    if len(found) != 1:
        what = "no" if not found else f"{len(found)} ({', '.join(p.name for p in found)})"
        raise ConfigError(f"dataset ID {text}: {what} folder(s) {prefix}* in $nnUNet_raw "
                          f"({root})")
    return found[0]


def adopt_splits(source: str | Path, run_splits: Path,
                 case_ids: Iterable[str] | None = None, n_folds: int | None = None,
                 write: bool = True) -> int:
    """Use nnU-Net's (or any) splits file as a run folder's ``splits.json``.

    Everything is checked before anything is written, so a refused file leaves the run
    folder as it was.

    Args:
        source: The splits file given (``--splits``).
        run_splits: The run folder's ``splits.json``.
        case_ids: The dataset's cases: when given, the folds must be a K-fold cover of
            them (:func:`mbnas.data.folds.check_splits`).
        n_folds: The folds the protocol asks for.
        write: False to check only (``--dry-run``, ``--estimate``).

    Returns:
        The number of folds.

    Raises:
        ConfigError: If ``source`` is not a usable splits file, or the run folder already
            has other folds.
    """
    folds = read_splits(source)
    if case_ids is not None:
        check_splits(source, folds, case_ids, n_folds)
    elif not folds:
        raise ConfigError(f"{source}: holds no folds")
    if run_splits.exists():
        if [(f.train, f.val) for f in read_splits(run_splits)] != \
                [(f.train, f.val) for f in folds]:
            raise ConfigError(f"{run_splits} holds other folds than {source}; choose another "
                              "--out or drop --splits")
        return len(folds)
    if write:
        save_splits(run_splits, folds)
    return len(folds)


__all__ = ["adopt_splits", "resolve_dataset"]
