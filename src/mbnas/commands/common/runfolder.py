"""A run folder: the names of its files, its start-up, its lock and config comparison.

A search, an evaluation or a training run writes everything into one folder, whose
layout only :class:`RunFolder` (and :class:`EvaluationFolder`) know. Running the same
command again on that folder resumes it; running it with other settings is refused with
the list of settings that differ, so a resumed run can never mix results of two
configurations.

The start-up of every driver is :meth:`RunFolder.check` (inputs checked, nothing
written), then :meth:`RunFolder.start`: the lock, the log, the dataset fingerprint and
the config claimed, the folds, and the context runs are trained in.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from mbnas.commands.common.claim import claim_config, one_line
from mbnas.commands.common.dataset import fold_case_ids
from mbnas.commands.common.preflight import (
    check_device,
    check_folds,
    check_output_dir,
    with_fingerprint,
)
from mbnas.commands.common.runlog import run_log
from mbnas.data.fingerprint import FINGERPRINT_FILE, claim_fingerprint
from mbnas.data.slices import SliceData
from mbnas.errors import ConfigError
from mbnas.store import ResultStore
from mbnas.store.lock import FileLock
from mbnas.store.optuna_mirror import FILENAME as OPTUNA_FILE
from mbnas.training.executors import DEFAULT_EXECUTOR
from mbnas.training.runs import RunContext, weights_file


class RunFolder:
    """The files of a search (or training) run folder, and its start-up.

    Args:
        path: The folder.
        shared: A folder whose store and weights this run shares with others (the
            repeats of ``--repeats``); default ``path``.
    """

    log_name = "search.log"
    kind = "a search run folder (of mbnas search)"

    def __init__(self, path: str | Path, shared: str | Path | None = None) -> None:
        self.path = Path(path)
        self.shared = Path(shared) if shared is not None else self.path

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r})"

    @property
    def config(self) -> Path:
        """The resolved config the folder was started with (``config.yaml``)."""
        return self.path / "config.yaml"

    @property
    def lock(self) -> Path:
        return self.path / ".lock"

    @property
    def log(self) -> Path:
        """The plain log of the driver (``search.log``, ``evaluate.log``)."""
        return self.path / self.log_name

    @property
    def splits(self) -> Path:
        """The cross-validation folds (``splits.json``), made once and reused."""
        return self.path / "splits.json"

    @property
    def fingerprint(self) -> Path:
        return self.path / FINGERPRINT_FILE

    @property
    def store(self) -> Path:
        """The result store: the folder's own, or the shared folder's."""
        return self.shared / "store.sqlite"

    @property
    def weights(self) -> Path:
        """Where runs keep their weights (``<arch_key>/fold<F>_seed<S>.pt``)."""
        return self.shared / "weights"

    @property
    def costs(self) -> Path:
        """Cost figures measured before (``costs.json``), read back on resume."""
        return self.path / "costs.json"

    @property
    def state(self) -> Path:
        """The search checkpoint (``search_state.json``)."""
        return self.path / "search_state.json"

    @property
    def best(self) -> Path:
        """The best network of a search so far (``best.json``)."""
        return self.path / "best.json"

    @property
    def search_log(self) -> Path:
        """Every evaluation of a search, one JSON object a line (``search_log.jsonl``)."""
        return self.path / "search_log.jsonl"

    @property
    def optuna(self) -> Path:
        """The search log as an Optuna study (``optuna.db``), for optuna-dashboard."""
        return self.path / OPTUNA_FILE

    @property
    def front(self) -> Path:
        """The Pareto archive of a cost-aware search (``front.json``)."""
        return self.path / "front.json"

    @property
    def dnas(self) -> Path:
        """The DNAS phase of ``--strategy dnas``: its checkpoint and ``decoded.json``."""
        return self.path / "dnas"

    @property
    def progress(self) -> Path:
        """The prefix of the search progress figure (``progress.png``/``.svg``)."""
        return self.path / "progress"

    @property
    def model(self) -> Path:
        """The model folder of a search's best network, exported by `mbnas evaluate`."""
        return self.path / "model"

    @property
    def repeats(self) -> Path:
        """The list of repeats of a ``--repeats`` folder (``repeats.json``)."""
        return self.path / "repeats.json"

    def read_config(self) -> dict[str, Any]:
        """The settings in ``config.yaml`` ({} when there is none).

        Raises:
            ConfigError: when it is not readable YAML or not a mapping.
        """
        if not self.config.is_file():
            return {}
        try:
            value = yaml.safe_load(self.config.read_text()) or {}
        except (OSError, yaml.YAMLError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{self.config}: not readable ({one_line(exc)})") from None
        if not isinstance(value, dict):
            raise ConfigError(f"{self.config}: expected a mapping of settings")
        return value

    def read_search_log(self) -> list[dict[str, Any]]:
        """The evaluations of a search, in order (empty when none are logged yet);
        architectures skipped for a cost limit are left out.

        Raises:
            ConfigError: naming the line that is not a JSON object.
        """
        path = self.search_log
        if not path.exists():
            return []
        entries = []
        for n, line in enumerate(path.read_text(errors="replace").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except (ValueError, RecursionError) as exc:
                raise ConfigError(f"{path}: line {n} is not a JSON object ({exc}); resume "
                                  "the search to rewrite the log from its state") from None
            if not isinstance(entry, dict):
                raise ConfigError(f"{path}: line {n} is not a JSON object")
            entries.append(entry)
        return [e for e in entries if "skipped" not in e]

    def read_front(self) -> dict[str, Any] | None:
        """The Pareto archive of a cost-aware search, or None (a search for Dice alone)."""
        try:
            return json.loads(self.front.read_text())
        except (OSError, ValueError):
            return None

    def weights_file(self, arch_key: str, fold: int, seed: int) -> Path:
        return weights_file(self.weights, arch_key, fold, seed)

    def check(self, device: str, executor: str = DEFAULT_EXECUTOR, what: str = "--out") -> None:
        """Refuse an unusable folder location, a folder of another kind, or an unusable
        device; writes nothing."""
        check_output_dir(self.path, what)
        self.check_kind(what)
        check_device(device, executor)

    def check_kind(self, what: str = "--out") -> None:
        """Refuse a folder that another command made (an evaluation folder given to a
        search, a search run folder given to an evaluation), before its files are read."""
        for kind in (RunFolder, EvaluationFolder):
            if kind.log_name != self.log_name and (self.path / kind.log_name).is_file():
                raise ConfigError(f"{self.path} is {kind.kind} ({kind.log_name} is there), not "
                                  f"{self.kind}; choose another {what}")

    def check_folds(self, data: SliceData, n_folds: int, seed: int, split: str) -> None:
        """Refuse folds the dataset cannot fill (patient-level folds); writes nothing."""
        if split == "case":
            check_folds(self.splits, data, n_folds, seed)

    def folds(self, data: SliceData, n_folds: int, seed: int, split: str = "case"
              ) -> tuple[tuple[str, ...], ...]:
        """Validation case ids of each fold, from the folder's splits (made the first time)."""
        return fold_case_ids(self.splits, data, n_folds, seed, split)

    def run_context(self, data: SliceData, folds: Sequence[Sequence[str]], device: str,
                    data_fingerprint: str | None = None) -> RunContext:
        return RunContext(data, tuple(tuple(f) for f in folds), device, str(self.weights),
                          data_fingerprint=data_fingerprint)

    def open_store(self) -> ResultStore:
        return ResultStore(self.store)

    def locked(self) -> RunLock:
        """The folder's lock, against a second driver (a context manager)."""
        return RunLock(self.path)

    @contextmanager
    def start(self, config: dict[str, Any], fingerprint: dict[str, Any],
              ignore: tuple[str, ...] = (), read: Sequence[Path] = (),
              upgrade: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
              grow: tuple[str, ...] = ()) -> Iterator[Started]:
        """Lock the folder, log to it, and claim its dataset and config.

        Every input must have been checked before (:meth:`check`): a refused run writes
        nothing. Yields whether the folder was resumed; the lock and the log are held
        until the block ends.

        Args:
            config: The resolved config (without the fingerprint: added here).
            fingerprint: The dataset fingerprint (``mbnas.data.fingerprint``).
            ignore: Settings that may change between runs of the folder.
            read: Search run folders this run reads: locked too (a search still running
                there is refused) and checked to be of the same dataset files.
        """
        with ExitStack() as stack:
            # The folders read first: a command refused because another one holds them
            # leaves no lock file and no log behind in its own (perhaps new) folder.
            for folder in read:
                stack.enter_context(reading_lock(folder))
            stack.enter_context(self.locked())
            stack.enter_context(run_log(self.log))
            for folder in read:
                claim_fingerprint(folder, fingerprint, files_only=True)
            claim_fingerprint(self.path, fingerprint)
            resumed = claim_config(self.config, with_fingerprint(config, fingerprint), ignore,
                                   upgrade, grow)
            yield Started(resumed, fingerprint["digest"])


@dataclass(frozen=True)
class Started:
    """What :meth:`RunFolder.start` found: a resumed folder, and the dataset's digest."""

    resumed: bool
    data_fingerprint: str


class EvaluationFolder(RunFolder):
    """The files of an `mbnas evaluate` folder: a run folder, plus the evaluation's results."""

    log_name = "evaluate.log"
    kind = "an evaluation folder (of mbnas evaluate)"

    @property
    def evaluation(self) -> Path:
        """The results (``evaluation.json``, see :mod:`mbnas.commands.common.evaluation_file`)."""
        return self.path / "evaluation.json"

    @property
    def models(self) -> Path:
        """The model folders of every evaluated model (``models/<slug>``)."""
        return self.path / "models"

    def model_dir(self, slug: str) -> Path:
        return self.models / slug

    @property
    def original_grid(self) -> Path:
        """Per-case metrics on the scans' original grids, kept for a resume."""
        return self.path / "original_grid.json"

    @property
    def external(self) -> Path:
        """Scores on the external test sets (``external.json``)."""
        return self.path / "external.json"


class RunLock:
    """An exclusive, non-blocking lock on ``folder/.lock``, held while the driver runs.

    The store's :class:`~mbnas.store.lock.FileLock`: the operating system releases it
    when the process dies (even by SIGKILL), so a killed run never leaves a stale lock.

    Args:
        folder: The folder to lock.
        reading: The folder is one this command reads (the search runs an evaluation
            reads, the evaluation a report reads), not its own ``--out``: the message then
            names that folder's command and says to wait, not to choose another ``--out``.
    """

    def __init__(self, folder: Path, reading: bool = False) -> None:
        self._lock = FileLock(Path(folder) / ".lock")
        self.path = self._lock.path
        self.reading = reading

    def __enter__(self) -> RunLock:
        holder = self._lock.acquire()
        if holder is not None:
            folder = self.path.parent
            if self.reading:
                raise ConfigError(
                    f"{folder}: another mbnas process (pid {holder}) is still writing "
                    f"{_kind_of(folder)}; wait for it to finish, then run this command again")
            raise ConfigError(
                f"{folder}: another mbnas process (pid {holder}) is using this run "
                "folder; wait for it to finish or choose another --out"
            )
        return self

    def __exit__(self, *exc: object) -> None:
        self._lock.release()


@contextmanager
def reading_lock(folder: Path) -> Iterator[None]:
    """Hold the lock of a folder this command reads (a search run an evaluation reads, an
    evaluation a report reads): a command still writing there is refused by name instead
    of being read half-way. A folder that cannot take a lock (a read-only file system or
    medium: nothing can be writing there) is read as it is."""
    lock = RunLock(folder, reading=True)
    try:
        lock.__enter__()
    except OSError:  # read-only: the lock file cannot be created
        yield
        return
    try:
        yield
    finally:
        lock.__exit__()


def _kind_of(folder: Path) -> str:
    """What a locked folder is, in words, by the log its command keeps there."""
    for kind in (EvaluationFolder, RunFolder):
        if (folder / kind.log_name).is_file():
            return "this " + kind.kind.split(" ", 1)[1]
    return "this folder"
