"""The Python API: ``from mbnas import search, evaluate, report, predict``.

The command line calls these same functions; everything it can do, a script can do with
the same settings and the same run folders (resumable, locked, checked the same way).

Example::

    import mbnas

    run = mbnas.search("Task09_Spleen", "runs/spleen", protocol="quick", budget=8)
    ev = mbnas.evaluate([run.folder], "runs/evaluation", seeds=2, folds=3)
    page = mbnas.report([run.folder], "report", evaluation=ev.folder)
    mbnas.predict(run.folder / "model", "new_scans/", "labels/")

Progress is logged (logger ``mbnas.progress``, INFO): training runs through the ``hooks``
(default :class:`~mbnas.training.runs.LoggingHooks`), the other long steps (preprocessing,
metrics, costs, export, report) through :mod:`mbnas.progress`, whose
``use_sink(CallbackSink(fn))`` calls ``fn(step)`` instead.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mbnas.errors import ConfigError

if TYPE_CHECKING:  # the driver imports torch: each function imports it when called
    from mbnas.commands.evaluate.run import EvaluateConfig, EvaluateOutcome
    from mbnas.commands.report.run import ReportOutcome
    from mbnas.commands.search.run import SearchConfig, SearchOutcome
    from mbnas.inference.segment import PredictSummary


def search(data_dir: str | Path | None, out: str | Path, *,
           config: SearchConfig | None = None, protocol: str = "paper",
           protocol_overrides: Mapping[str, Any] | None = None,
           hooks: Any = None, executor: Any = None,
           on_evaluation: Callable[[Any, list[Any]], None] | None = None,
           retry_failed: bool = False, shared: str | Path | None = None,
           **settings: Any) -> SearchOutcome:
    """Run (or resume) an architecture search into the run folder ``out``.

    Args:
        data_dir: MSD or nnU-Net dataset folder (ignored when ``config`` is given).
        out: Run folder: created, or resumed when it holds the same settings.
        config: A complete :class:`SearchConfig`; otherwise one is built from
            ``data_dir``, ``protocol``, ``protocol_overrides`` and ``settings`` by
            :func:`search_config`.
        protocol: Protocol preset name ("paper", "quick", ...).
        protocol_overrides: Protocol fields to change (``{"epochs": 5}``).
        hooks: Run hooks (``run_started``/``epoch_done``), e.g. a progress display;
            default: each run and epoch is logged (``mbnas.progress``, INFO), so
            ``logging.basicConfig(level="INFO")`` shows progress in a notebook.
        executor: An executor to use as is (its owner starts and closes it); default:
            the config's executor, started and closed here.
        on_evaluation: Called with (strategy, results) after every evaluated batch.
        retry_failed: Train failed runs again and replay the search from its seed.
        shared: A folder whose store and weights several searches share (the repeats of
            ``--repeats``); default ``out``.
        **settings: Other :class:`SearchConfig` fields (space, strategy, budget, seed,
            start, device, cache_dir, threads, ...).

    Returns:
        The run folder, best genotype and score, and the number of evaluations.
    """
    from mbnas.commands.search.run import SearchConfig, run_search

    out = _path("search", "out", out)
    if config is not None and not isinstance(config, SearchConfig):
        raise ConfigError(f"search: config must be a SearchConfig, got {_kind(config)}")
    _callable_or_none("search", "on_evaluation", on_evaluation)
    _bool("search", "retry_failed", retry_failed)
    shared_folder: Path | None = _path("search", "shared", shared, optional=True)
    if config is None:
        if data_dir is None:
            raise ConfigError("search: data_dir must be a dataset folder when no config is given, "
                              "got None")
        config = search_config(data_dir, protocol=protocol,
                               protocol_overrides=protocol_overrides, **settings)
    with _executor(executor, config.executor, config.ray, config.threads) as ex:
        return run_search(config, out, hooks=_hooks(hooks), executor=ex,
                          on_evaluation=on_evaluation, retry_failed=retry_failed,
                          shared=shared_folder)


def search_config(data_dir: str | Path, *, protocol: str = "paper",
                  protocol_overrides: Mapping[str, Any] | None = None,
                  **settings: Any) -> SearchConfig:
    """The :class:`SearchConfig` that :func:`search` runs, without running it.

    ``paper`` resolves by the dataset's name exactly as on the command line
    (:func:`mbnas.training.protocol.resolve_preset`); ``data_dir`` may be an nnU-Net dataset
    ID or name under ``$nnUNet_raw``.

    Raises:
        ConfigError: naming the argument or setting that is wrong.
    """
    from mbnas.commands.search.run import SearchConfig
    from mbnas.data.nnunet import resolve_dataset
    from mbnas.training.protocol import get_protocol, resolve_preset

    if isinstance(data_dir, int) and not isinstance(data_dir, bool):
        data_dir = str(data_dir)  # an nnU-Net dataset ID
    data_dir = _path("search", "data_dir", data_dir)
    if not isinstance(protocol, str):
        raise ConfigError(f"search: protocol must be a preset name (str), got {_kind(protocol)}")
    if protocol_overrides is not None and not isinstance(protocol_overrides, Mapping):
        raise ConfigError("search: protocol_overrides must be a mapping of protocol fields, "
                          f"got {_kind(protocol_overrides)}")
    folder = resolve_dataset(data_dir).resolve()
    name, note = resolve_preset(protocol, folder)
    if note is not None:
        _log.info(note)
    proto = get_protocol(name, **dict(protocol_overrides or {}))
    return SearchConfig.from_dict({**settings, "data_dir": str(folder),
                                   "protocol": proto.to_dict()})


def evaluate(run_dirs: str | Path | Sequence[str | Path], out: str | Path | None = None, *,
             config: EvaluateConfig | None = None, hooks: Any = None, executor: Any = None,
             threads: int | None = None, retry_failed: bool = False,
             **settings: Any) -> EvaluateOutcome:
    """Retrain the best network of each search run and the baselines with the final protocol.

    Args:
        run_dirs: A search run folder, or several (each with ``best.json``), all of one
            dataset.
        out: Evaluation folder (default: ``<parent of the first run>/evaluation``).
        config: A complete :class:`EvaluateConfig`; otherwise built by
            :func:`mbnas.commands.evaluate.run.evaluate_config` from ``run_dirs`` and
            ``settings`` (seeds, folds, baselines, protocol, device, split_seed, ...).
        hooks: Run hooks, e.g. a progress display; default: logged, as for search.
        executor: An executor to use as is; default: the config's, started and closed here.
        threads: CPU threads per training run.
        retry_failed: Train failed runs again.

    Returns:
        Per-model evaluations, model folders, counts of trained and stored runs, failures.
    """
    from mbnas.commands.evaluate.run import EvaluateConfig, evaluate_config, run_evaluation

    run_dirs = _paths("evaluate", "run_dirs", run_dirs)
    out = _path("evaluate", "out", out, optional=True)
    if config is not None and not isinstance(config, EvaluateConfig):
        raise ConfigError(f"evaluate: config must be an EvaluateConfig, got {_kind(config)}")
    _int_or_none("evaluate", "threads", threads)
    _bool("evaluate", "retry_failed", retry_failed)
    for name in ("seeds", "folds", "split_seed"):
        if name in settings:
            _int_or_none("evaluate", name, settings[name], optional=False)
    if "baselines" in settings:
        settings["baselines"] = _strings("evaluate", "baselines", settings["baselines"])
    if config is None:
        config = evaluate_config(run_dirs, **settings)
    with _executor(executor, config.executor, config.ray, threads) as ex:
        return run_evaluation(config, out, hooks=_hooks(hooks), executor=ex,
                              retry_failed=retry_failed)


#: The hook methods the commands call (each optional): see ``mbnas.training.runs.RunHooks``.
_HOOK_METHODS = ("run_started", "epoch_done", "runs_queued", "run_done")


class _GuardedHooks:
    """A user's hooks, whose exceptions become :class:`~mbnas.errors.HookError`: a bug in
    a progress display stops the command with a clear error instead of being recorded as
    a failed training run (which would send a search down another path)."""

    def __init__(self, hooks: Any) -> None:
        self._hooks = hooks

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._hooks, name)  # AttributeError: the hook is optional
        if name not in _HOOK_METHODS or not callable(method):
            return method
        owner = f"{type(self._hooks).__name__}.{name}"

        def call(*args: Any) -> Any:
            from mbnas.errors import HookError

            try:
                return method(*args)
            except HookError:
                raise
            except Exception as exc:
                raise HookError(
                    f"the progress hook {owner} raised {type(exc).__name__}: {exc}; the "
                    "command stopped there and recorded no run as failed (finished runs "
                    "are kept: the same call resumes)") from exc

        return call


def _hooks(hooks: Any) -> Any:
    """The hooks a command runs with: the user's, guarded, or the logging ones."""
    return _GuardedHooks(hooks) if hooks else _logging_hooks()


def _logging_hooks() -> Any:
    """Without hooks the API logs each run and epoch (logger ``mbnas.progress``, INFO)."""
    from mbnas.training.runs import LoggingHooks

    return LoggingHooks()


def report(run_dirs: str | Path | Sequence[str | Path] = (), out: str | Path = "report", *,
           evaluation: str | Path | None = None, cache_dir: str | Path | None = None,
           nnunet: Sequence[str] = ()) -> ReportOutcome:
    """Write the HTML report, Table 1, statistics, figures and the NAS reporting card.

    Args:
        run_dirs: A search run folder, or several (default: those of the evaluation).
        out: Report folder.
        evaluation: Folder of :func:`evaluate`; without it the report is search-only.
        cache_dir: Preprocessing cache (for the example segmentations).
        nnunet: nnU-Net results folders (``RESULTS_DIR[:LABEL]``) whose validation
            summaries become rows "trained by nnU-Net".
    """
    from mbnas.commands.report.run import build_report

    run_dirs = _paths("report", "run_dirs", run_dirs)
    out = _path("report", "out", out)
    evaluation = _path("report", "evaluation", evaluation, optional=True)
    cache_dir = _path("report", "cache_dir", cache_dir, optional=True)
    return build_report(run_dirs, out, evaluation=evaluation, cache_dir=cache_dir,
                        nnunet=_strings("report", "nnunet", nnunet))


def predict(model_dir: str | Path, input_path: str | Path, out_dir: str | Path, *,
            device: str = "auto", batch_size: int = 16,
            on_scan: Callable[..., None] | None = None,
            backend: str = "torch") -> PredictSummary:
    """Segment a NIfTI scan or a folder of scans with a model folder (fold ensemble).

    Args:
        model_dir: A model folder written by :func:`evaluate` (holds ``model.json``).
        input_path: A scan or a folder of scans.
        out_dir: Folder for the label files (``<name>.nii.gz`` on each scan's grid).
        device: "auto", "cpu" or "cuda".
        batch_size: Slices per forward pass.
        on_scan: Called after each scan with (scan, written path or None, error or None).
        backend: "torch" (the model folder's weights) or "onnxruntime" (an ONNX export).
    """
    from mbnas.inference.segment import predict as _predict

    model_dir = _path("predict", "model_dir", model_dir)
    input_path = _path("predict", "input_path", input_path)
    out_dir = _path("predict", "out_dir", out_dir)
    for name, value in (("device", device), ("backend", backend)):
        if not isinstance(value, str):
            raise ConfigError(f"predict: {name} must be a string, got {_kind(value)}")
    _int_or_none("predict", "batch_size", batch_size, optional=False)
    _callable_or_none("predict", "on_scan", on_scan)
    return _predict(model_dir, input_path, out_dir, device=device, batch_size=batch_size,
                    on_scan=on_scan, backend=backend)


_log = logging.getLogger("mbnas")


def _kind(value: Any) -> str:
    return f"{type(value).__name__} {value!r}"[:80]


def _path(function: str, name: str, value: Any, optional: bool = False) -> Any:
    """``value`` as a Path; a ConfigError naming the argument for anything else."""
    if value is None and optional:
        return None
    if isinstance(value, str | os.PathLike) and str(value).strip():
        return Path(value)
    raise ConfigError(f"{function}: {name} must be a path (str or pathlib.Path), got "
                      f"{_kind(value)}")


def _paths(function: str, name: str, value: Any) -> list[Path]:
    """One path (one folder, not its letters) or a sequence of paths, as a list."""
    if isinstance(value, str | os.PathLike):
        return [_path(function, name, value)]
    if not isinstance(value, Sequence | set | frozenset) or isinstance(value, bytes):
        raise ConfigError(f"{function}: {name} must be a path or a list of paths, got "
                          f"{_kind(value)}")
    return [_path(function, f"{name}[{i}]", v) for i, v in enumerate(value)]


def _strings(function: str, name: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, Sequence) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{function}: {name} must be a list of strings, got {_kind(value)}")
    return tuple(value)


def _int_or_none(function: str, name: str, value: Any, optional: bool = True) -> None:
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{function}: {name} must be an integer, got {_kind(value)}")


def _bool(function: str, name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise ConfigError(f"{function}: {name} must be True or False, got {_kind(value)}")


def _callable_or_none(function: str, name: str, value: Any) -> None:
    if value is not None and not callable(value):
        raise ConfigError(f"{function}: {name} must be callable, got {_kind(value)}")


class _executor:
    """Use ``given`` as is, or make the named executor, start it, and close it after."""

    def __init__(self, given: Any, name: str, ray: Mapping[str, Any],
                 threads: int | None) -> None:
        self.given, self.name, self.ray, self.threads = given, name, ray, threads
        self.made: Any = None

    def __enter__(self) -> Any:
        if self.given is not None:
            return self.given
        from mbnas.training.executors import make_executor

        self.made = make_executor(self.name, dict(self.ray), self.threads)
        self.made.start()
        return self.made

    def __exit__(self, *exc: object) -> None:
        if self.made is not None:
            self.made.close()
