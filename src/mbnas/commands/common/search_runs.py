"""Reading finished search run folders: their settings, best architecture and display name.

``mbnas evaluate`` and ``mbnas report`` both start from search run folders (what
``mbnas search --out`` wrote). A folder is usable once its search has finished at least
one evaluation: then it holds ``config.yaml`` and ``best.json``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mbnas.commands.common.runfolder import RunFolder
from mbnas.errors import ConfigError
from mbnas.scoring.registry import DEFAULT_SCORING
from mbnas.strategies import DEFAULT_STRATEGY, method_name, upgrade_settings
from mbnas.training.protocol import Protocol

#: Display name of each baseline.
BASELINE_NAMES = {"smp-unet": "smp U-Net", "smp-resunet": "smp ResU-Net"}


@dataclass(frozen=True)
class SearchRun:
    """One search run folder, read.

    Attributes:
        folder: The run folder (absolute).
        config: Its ``config.yaml`` (the resolved ``SearchConfig`` as a dict), older
            versions' names read as today's (``mbnas.strategies.upgrade_settings``).
        best: Its ``best.json`` (``genotype``, ``arch_key``, ``score``, ``protocol_key``).
        name: Display name of its best network ("MB-NAS", or "MB-NAS (folder)" when two
            runs of one report share a search space).
    """

    folder: Path
    config: dict[str, Any]
    best: dict[str, Any]
    name: str

    @property
    def space(self) -> str:
        return str(self.config.get("space", "?"))

    @property
    def strategy(self) -> str:
        return str(self.config.get("strategy", DEFAULT_STRATEGY))

    @property
    def data_dir(self) -> str:
        return str(Path(self.config["data_dir"]).resolve())

    @property
    def protocol(self) -> Protocol:
        return Protocol.from_dict(self.config.get("protocol") or {})

    @property
    def genotype(self) -> dict[str, Any]:
        return dict(self.best["genotype"])

    @property
    def files(self) -> RunFolder:
        """The folder's files."""
        return RunFolder(self.folder)

    @property
    def label(self) -> str:
        """A short label for the run: "<name> seed <search seed>"."""
        return f"{self.name} seed {self.config.get('seed', '?')}"


def progress_label(config: dict[str, Any]) -> str:
    """A run's label in the search progress figure: "MB-NAS seed 0", "MB-NAS (random)
    seed 1", "Bilevel-NAS seed 0"."""
    from mbnas.strategies.registry import strategy_definition

    config = upgrade_settings(config)
    space, strategy = str(config.get("space", "?")), config.get("strategy")
    label = method_name(space, str(strategy or DEFAULT_STRATEGY))
    # A strategy other than the default that makes no method of its own is named.
    if strategy is not None and strategy != DEFAULT_STRATEGY:
        try:
            own = bool(strategy_definition(strategy).method)
        except ConfigError:  # a strategy this version does not know
            own = False
        if not own:
            label += f" ({strategy})"
    scoring = config.get("scoring")
    if scoring is not None and scoring != DEFAULT_SCORING:  # whose scores the figure shows
        label += f" [{scoring} scores]"
    return f"{label} seed {config.get('seed', '?')}"


def read_search_run(folder: str | Path, name: str | None = None) -> SearchRun:
    """Read a search run folder; refuse one that is not a search or has no best network yet.

    Raises:
        ConfigError: naming the folder and what is missing.
    """
    folder = Path(folder).resolve()
    if not folder.is_dir():
        raise ConfigError(f"{folder}: no such search run folder")
    files = RunFolder(folder)
    config_path, best_path = files.config, files.best
    if not config_path.is_file():
        raise ConfigError(f"{folder}: not a search run folder (no {config_path.name}); pass "
                          "the --out folder of `mbnas search`")
    config = upgrade_settings(files.read_config())
    if "data_dir" not in config or "space" not in config:
        raise ConfigError(f"{config_path}: not the config of a search (no data_dir or space)")
    if not best_path.is_file():
        raise ConfigError(f"{folder}: no {best_path.name}: the search has not finished an "
                          "evaluation yet; run (or resume) `mbnas search` on it first")
    try:
        best = json.loads(best_path.read_text())
        if not isinstance(best, dict) or not isinstance(best.get("genotype"), dict):
            raise ValueError("no 'genotype' mapping")
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{best_path}: not a readable {best_path.name} ({exc})") from None
    return SearchRun(folder, config, best, name or method_name(
        str(config["space"]), str(config.get("strategy", DEFAULT_STRATEGY))))


def read_search_runs(folders: Sequence[str | Path]) -> list[SearchRun]:
    """Read several runs, in order, with unique names; refuse runs on different datasets.

    Two runs of one search space are told apart by their folder name ("MB-NAS (run_a)").
    A folder given twice is read once.

    Raises:
        ConfigError: for an unusable folder, or runs that searched different datasets.
    """
    from mbnas.commands.common.repeats import expand_repeats

    unique: list[Path] = []
    for f in expand_repeats(folders):
        path = Path(f).resolve()
        if path not in unique:
            unique.append(path)
    if not unique:
        raise ConfigError("no search run folder given")
    runs = [read_search_run(f) for f in unique]
    datasets = {r.data_dir for r in runs}
    if len(datasets) > 1:
        listing = "; ".join(f"{r.folder}: {r.data_dir}" for r in runs)
        raise ConfigError("the search runs searched different datasets, so their networks "
                          f"cannot be compared on one; give runs of one dataset ({listing})")
    counts: dict[str, int] = {}
    for r in runs:
        counts[r.name] = counts.get(r.name, 0) + 1
    named = [SearchRun(r.folder, r.config, r.best,
                       r.name if counts[r.name] == 1 else f"{r.name} ({r.folder.name})")
             for r in runs]
    names = [r.name for r in named]
    if len(set(names)) != len(names):  # same space, same folder name in two parents
        named = [SearchRun(r.folder, r.config, r.best, f"{r.name} #{i + 1}")
                 for i, r in enumerate(named)]
    return named


def slug(name: str) -> str:
    """A folder name for a model name: "MB-NAS (run a)" -> "mb-nas-run-a"."""
    return re.sub(r"[^a-z0-9_]+", "-", name.lower()).strip("-") or "model"


@dataclass(frozen=True)
class EvaluatedModel:
    """What the evaluation knows of one model besides its :class:`ModelEvaluation`."""

    name: str
    architecture: dict[str, Any]
    arch_key: str
    search_run: SearchRun | None = None
    front_member: bool = False  # an archive member besides the best: no RUN_DIR/model

    @property
    def kind(self) -> str:
        return "searched" if self.search_run is not None else "baseline"
