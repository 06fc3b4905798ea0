"""The unit of work: one training run (architecture, fold, seed), and the executors that run them.

An executor takes a batch of run specifications and yields a finished record for each,
in whatever order they complete. The driver (the evaluator) commits each record to the
store as it arrives, so nothing finished is lost when the driver dies, and it aggregates
by key, so the completion order never changes a result. The in-process executor runs
them one after another; ``mbnas.training.ray_executor`` spreads them over a Ray cluster.
"""

from __future__ import annotations

import datetime as dt
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from typing import Protocol as TypingProtocol

import torch

from mbnas.data.slices import SliceData
from mbnas.data.volumes import VolumeData
from mbnas.errors import HookError
from mbnas.nn.weight_init import initialise
from mbnas.spaces.mbnas import architecture_from_dict, build_model
from mbnas.store import RunRecord, file_sha256, runtime_versions, save_weights
from mbnas.training.executors import DEFAULT_EXECUTOR
from mbnas.training.failures import ENVIRONMENT, failure_kind
from mbnas.training.protocol import Protocol
from mbnas.training.train import EpochStats, RunOutcome, train_run


@dataclass(frozen=True)
class RunSpec:
    """One training run to do: which architecture, fold and seed, under which protocol."""

    architecture: dict[str, Any]
    arch_key: str
    fold: int
    seed: int
    protocol: Protocol

    @property
    def label(self) -> str:
        return f"{self.arch_key} fold {self.fold} seed {self.seed}"


def weights_name(fold: int, seed: int) -> str:
    """The file name of a run's weights (kept by model folders too): ``fold<F>_seed<S>.pt``."""
    return f"fold{fold}_seed{seed}.pt"


def weights_file(weights_dir: Path, arch_key: str, fold: int, seed: int) -> Path:
    """Where a run keeps its weights: ``<weights_dir>/<arch_key>/fold<F>_seed<S>.pt``."""
    return Path(weights_dir) / arch_key / weights_name(fold, seed)


@dataclass(frozen=True)
class RunContext:
    """What every run needs besides its spec: the data, the folds and where to put weights.

    Attributes:
        data: All preprocessed slices of the dataset (or its volumes, for 3D).
        folds: Validation case ids of each fold (the training cases are all others).
        device: "auto", "cpu" or "cuda".
        weights_dir: Where kept weights go (``<arch_key>/fold<F>_seed<S>.pt``).
    """

    data: SliceData | VolumeData
    folds: tuple[tuple[str, ...], ...]
    device: str = "auto"
    weights_dir: str | None = None
    data_fingerprint: str | None = None


def utc_now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def fold_data(data: SliceData | VolumeData, folds: Sequence[Sequence[str]], fold: int
              ) -> tuple[Any, Any]:
    val_ids = list(folds[fold])
    held_out = set(val_ids)
    train_ids = [c for c in data.case_ids if c not in held_out]
    return data.subset(train_ids), data.subset(val_ids)


def execute_run(
    spec: RunSpec,
    ctx: RunContext,
    on_epoch: Callable[[EpochStats], None] | None = None,
) -> RunRecord:
    """Train one run and return its record; an error becomes a failed record, not a crash.

    The network is initialised from ``spec.seed`` inside a forked random state, so the
    caller's global generators are left as they were.
    """
    started, t0 = utc_now(), time.perf_counter()
    try:
        train, val = fold_data(ctx.data, ctx.folds, spec.fold)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(spec.seed)
            model = initialise(build_model(architecture_from_dict(spec.architecture),
                                           ctx.data.in_channels, ctx.data.n_classes,
                                           spec.protocol.base_channels,
                                           **_dims(spec.protocol)), spec.protocol.init)
        if spec.protocol.volume is not None:
            from mbnas.training.train3d import train_run_3d

            outcome = train_run_3d(model, train, val, spec.protocol, spec.seed, ctx.device,
                                   on_epoch)
        else:
            outcome = train_run(model, train, val, spec.protocol, spec.seed, ctx.device,
                                on_epoch)
        return record_outcome(spec, ctx, outcome, started, time.perf_counter() - t0)
    except (KeyboardInterrupt, SystemExit, HookError):  # a progress hook's bug: no result
        raise
    except Exception as exc:
        error = traceback.format_exc()
        if not str(exc):  # MemoryError() and friends carry no message of their own
            error += f"{type(exc).__name__}: {_DESCRIPTIONS.get(type(exc), 'no message')}\n"
        return failed_record(spec, ctx, error, started, time.perf_counter() - t0,
                             failure_kind(exc))


def _dims(protocol: Protocol) -> dict[str, Any]:
    """The builder's 3D arguments of a protocol (none for 2D: built as before)."""
    if protocol.volume is None:
        return {}
    return {"spatial_dims": 3, "strides": protocol.volume.strides}


def _base_fields(spec: RunSpec, ctx: RunContext, started: str) -> dict[str, Any]:
    return dict(
        arch_key=spec.arch_key, protocol_key=spec.protocol.key, fold=spec.fold,
        seed=spec.seed, architecture=spec.architecture, protocol=spec.protocol.to_dict(),
        versions=runtime_versions(), started_at=started,
        data_fingerprint=ctx.data_fingerprint,
    )


def record_outcome(spec: RunSpec, ctx: RunContext, outcome: RunOutcome, started: str,
                   seconds: float) -> RunRecord:
    """The finished record of a trained run; its kept weights are saved here."""
    weights_path = sha = None
    if outcome.state_dict is not None and ctx.weights_dir:
        path = weights_file(Path(ctx.weights_dir), spec.arch_key, spec.fold, spec.seed)
        save_weights(outcome.state_dict, path)
        weights_path, sha = str(path.resolve()), file_sha256(path)
    return RunRecord(
        status="finished", score=outcome.score,
        curve=[asdict(e) for e in outcome.curve],
        metrics={"case_dice": outcome.case_dice, "cases": outcome.metrics,
                 "precision": outcome.precision,
                 "constant_prediction": outcome.constant_class,
                 # the CPU threads it trained with: scores move between thread counts
                 "threads": torch.get_num_threads()},
        seconds=seconds, device=outcome.device,
        finished_at=utc_now(), error=None, weights_path=weights_path,
        weights_sha256=sha, **_base_fields(spec, ctx, started),
    )


def failed_record(spec: RunSpec, ctx: RunContext, error: str, started: str,
                  seconds: float, failure: str = ENVIRONMENT) -> RunRecord:
    """The failed record of a run, with its traceback and why it failed (``failure``:
    environment, e.g. a lost worker, or network; see :mod:`mbnas.training.failures`)."""
    return RunRecord(
        status="failed", score=None, curve=[], metrics={}, seconds=seconds,
        device=ctx.device, finished_at=utc_now(), error=error, weights_path=None,
        failure=failure, **_base_fields(spec, ctx, started),
    )


_DESCRIPTIONS: dict[type[BaseException], str] = {
    MemoryError: "the machine ran out of memory (RAM) during this run; free memory or lower "
                 "batch_size, then resume"}


class RunHooks(TypingProtocol):
    """Progress callbacks an executor calls (all optional to act on).

    The evaluator also calls, where the hooks have them, ``runs_queued(to_train,
    stored)`` before a batch (``stored``: runs answered by the store) and
    ``run_done(record)`` after each run's record is committed.
    """

    def run_started(self, spec: RunSpec) -> None: ...
    def epoch_done(self, spec: RunSpec, stats: EpochStats) -> None: ...


class Executor(TypingProtocol):
    """Runs a batch of runs and yields a record per run, in completion order.

    Life cycle: ``start()`` once before the first batch (connect, print where it runs),
    ``run(...)`` per batch, ``close()`` once at the end (also after an error).
    """

    def start(self) -> None: ...
    def run(self, specs: Sequence[RunSpec], ctx: RunContext,
            hooks: RunHooks | None = None) -> Iterator[RunRecord]: ...
    def close(self) -> None: ...


@dataclass
class InProcessExecutor:
    """The default: runs one after another in this process, on this machine's device.

    Args:
        threads: Intra-op CPU threads of each run (None: the usable CPUs, see
            :mod:`mbnas.training.cpus`; never torch's default of every core).
            Float reductions depend on the thread count, so runs repeat bit for bit only
            with the same count; the Ray executor uses the same setting.
    """

    threads: int | None = None
    name: str = field(default=DEFAULT_EXECUTOR, init=False)

    def start(self) -> None:
        """Nothing to connect to: runs execute in this process."""

    def close(self) -> None:
        """Nothing to release."""

    def run(self, specs: Sequence[RunSpec], ctx: RunContext,
            hooks: RunHooks | None = None) -> Iterator[RunRecord]:
        from mbnas.training.cpus import default_threads

        before = torch.get_num_threads()
        try:
            torch.set_num_threads(self.threads if self.threads is not None
                                  else default_threads())
            yield from self._run(specs, ctx, hooks)
        finally:
            torch.set_num_threads(before)

    def _run(self, specs: Sequence[RunSpec], ctx: RunContext,
             hooks: RunHooks | None) -> Iterator[RunRecord]:
        for spec in specs:
            if hooks is not None:
                hooks.run_started(spec)
            callback = None
            if hooks is not None:
                def callback(stats: EpochStats, spec: RunSpec = spec) -> None:
                    hooks.epoch_done(spec, stats)
            yield execute_run(spec, ctx, callback)


class LoggingHooks:
    """Run hooks that log each run's start and each epoch through :mod:`logging`
    (logger ``mbnas.progress``, INFO): what the Python API uses when given no hooks, so a
    notebook shows progress after ``logging.basicConfig(level="INFO")``."""

    def __init__(self, logger: str = "mbnas.progress") -> None:
        import logging

        self.log = logging.getLogger(logger)
        self.started = 0

    def run_started(self, spec: RunSpec) -> None:
        self.started += 1
        self.log.info("run %d started: %s", self.started, spec.label)

    def epoch_done(self, spec: RunSpec, stats: EpochStats) -> None:
        self.log.info("%s epoch %d/%d: loss %.4f, val Dice %.4f (%.1f s)", spec.label,
                      stats.epoch + 1, spec.protocol.epochs, stats.loss, stats.val_dice,
                      stats.seconds)
