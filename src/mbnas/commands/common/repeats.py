"""`mbnas search --repeats K`: K independent searches on the same folds, sharing one store.

Search stability (does a second search find the same network?) is measured by repeating
a search with other search seeds. The repeats of ``OUT`` are run folders of their own,
``OUT/repeat0`` ... ``OUT/repeat{K-1}``, with search seeds ``seed``, ``seed + 1`` ...; each
is an ordinary search run folder (config, state, log, best), so each resumes like any
search. They share:

* the folds: ``OUT/splits.json`` is made once and copied into every repeat;
* the store and the weights: ``OUT/store.sqlite`` and ``OUT/weights``, so an
  architecture that one repeat evaluated is never trained again by another (its runs
  are found in the store under the same architecture and protocol keys).

``OUT/repeats.json`` lists the repeats; `mbnas evaluate` and `mbnas report` accept
``OUT`` in place of the list of its repeat folders.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from mbnas.commands.common.dataset import training_data
from mbnas.commands.common.runfolder import RunFolder
from mbnas.errors import ConfigError
from mbnas.io import atomic_write_json

REPEATS_FORMAT = "mbnas-repeats"


def repeat_folder(out: Path, k: int) -> Path:
    return Path(out) / f"repeat{k}"


def prepare_repeats(config: Any, out: str | Path, repeats: int) -> list[tuple[Any, Path]]:
    """Make the shared folds and ``repeats.json``; return (config, folder) per repeat.

    Args:
        config: The :class:`~mbnas.commands.search.run.SearchConfig` of the first repeat.
        out: The folder holding the repeats.
        repeats: K, at least 2 (a folder may be resumed with a larger K).

    Raises:
        ConfigError: for K < 2 or a folder that holds another search.
    """
    shared = RunFolder(out)
    out = shared.path
    if repeats < 2:
        raise ConfigError(f"--repeats needs at least 2 searches, got {repeats}")
    if shared.config.is_file():
        raise ConfigError(f"{out} holds a single search; choose another --out for --repeats")
    with shared.locked():
        data = training_data(config.data_dir, config.cache_dir, config.protocol.image_size,
                             config.sites_file, config.protocol.normalisation,
                             config.protocol.target_spacing,
                             config.protocol.allow_cropped_labels)
        shared.folds(data, config.protocol.folds, config.seed, config.split)
        plan = []
        for k in range(repeats):
            folder = RunFolder(repeat_folder(out, k), shared=out)
            folder.path.mkdir(parents=True, exist_ok=True)
            if not folder.splits.exists():
                shutil.copyfile(shared.splits, folder.splits)
            plan.append((dataclasses.replace(config, seed=config.seed + k), folder.path))
        old = _read(out)
        known = max(repeats, len(old.get("repeats", [])))
        atomic_write_json(shared.repeats, {
            "format": REPEATS_FORMAT, "first_seed": config.seed,
            "repeats": [repeat_folder(out, k).name for k in range(known)],
            "store": shared.store.name, "splits": shared.splits.name})
    return plan


def _read(out: Path) -> dict[str, Any]:
    path = RunFolder(out).repeats
    if not path.is_file():
        return {}
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: not readable ({exc})") from None
    if not isinstance(raw, dict) or raw.get("format") != REPEATS_FORMAT:
        raise ConfigError(f"{path}: not a repeats file of mbnas")
    return raw


def is_repeats_folder(folder: str | Path) -> bool:
    return RunFolder(folder).repeats.is_file()


def expand_repeats(folders: Sequence[str | Path]) -> Iterator[Path]:
    """Each folder, with a repeats folder replaced by its repeat folders that exist."""
    for f in folders:
        path = Path(f)
        if is_repeats_folder(path):
            yield from (path / name for name in _read(path).get("repeats", [])
                        if RunFolder(path / name).best.is_file())
        else:
            yield path


def store_path(run_folder: str | Path) -> Path:
    """The store a search run folder wrote to: its own, or its repeats folder's."""
    folder = RunFolder(run_folder)
    if not folder.store.exists() and is_repeats_folder(folder.path.parent):
        return RunFolder(folder.path.parent).store
    return folder.store


def repeat_groups(folders: Sequence[Path]) -> dict[Path, list[Path]]:
    """Run folders grouped by the repeats folder they belong to (2 or more each)."""
    groups: dict[Path, list[Path]] = {}
    for f in folders:
        if is_repeats_folder(f.parent):
            groups.setdefault(f.parent, []).append(f)
    return {k: v for k, v in groups.items() if len(v) > 1}
