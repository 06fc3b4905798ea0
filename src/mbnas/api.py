"""The Python API: ``from mbnas import search, evaluate, report, predict``.

The command line calls these same functions; everything it can do, a script can do with
the same settings and the same run folders (resumable, locked, checked the same way).

Example::

    import mbnas

    run = mbnas.search("Task09_Spleen", "runs/spleen", protocol="quick", budget=8)
    ev = mbnas.evaluate([run.folder], "runs/evaluation", seeds=2, folds=3)
    page = mbnas.report([run.folder], "report", evaluation=ev.folder)
    mbnas.predict(run.folder / "model", "new_scans/", "labels/")
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the driver imports torch: each function imports it when called
    from mbnas.driver.evaluate import EvaluateConfig, EvaluateOutcome
    from mbnas.driver.report import ReportOutcome
    from mbnas.driver.search import SearchConfig, SearchOutcome
    from mbnas.inference.inference import PredictSummary


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
            ``data_dir``, ``protocol``, ``protocol_overrides`` and ``settings``.
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
    from mbnas.driver.search import SearchConfig, run_search
    from mbnas.engine.config import get_protocol

    if config is None:
        proto = get_protocol(protocol, **dict(protocol_overrides or {}))
        config = SearchConfig.from_dict({**settings, "data_dir": str(Path(data_dir).resolve()),
                                         "protocol": proto.to_dict()})
    with _executor(executor, config.executor, config.ray, config.threads) as ex:
        return run_search(config, out, hooks=hooks or _logging_hooks(), executor=ex,
                          on_evaluation=on_evaluation,
                          retry_failed=retry_failed,
                          shared=Path(shared) if shared is not None else None)


def evaluate(run_dirs: Sequence[str | Path], out: str | Path | None = None, *,
             config: EvaluateConfig | None = None, hooks: Any = None, executor: Any = None,
             threads: int | None = None, retry_failed: bool = False,
             **settings: Any) -> EvaluateOutcome:
    """Retrain the best network of each search run and the baselines with the final protocol.

    Args:
        run_dirs: Search run folders (each with ``best.json``), all of one dataset.
        out: Evaluation folder (default: ``<parent of the first run>/evaluation``).
        config: A complete :class:`EvaluateConfig`; otherwise built by
            :func:`mbnas.driver.evaluate.evaluate_config` from ``run_dirs`` and
            ``settings`` (seeds, folds, baselines, protocol, device, split_seed, ...).
        hooks: Run hooks, e.g. a progress display; default: logged, as for search.
        executor: An executor to use as is; default: the config's, started and closed here.
        threads: CPU threads per training run.
        retry_failed: Train failed runs again.

    Returns:
        Per-model evaluations, model folders, counts of trained and stored runs, failures.
    """
    from mbnas.driver.evaluate import evaluate_config, run_evaluation

    if config is None:
        config = evaluate_config(run_dirs, **settings)
    with _executor(executor, config.executor, config.ray, threads) as ex:
        return run_evaluation(config, out, hooks=hooks or _logging_hooks(), executor=ex,
                              retry_failed=retry_failed)


def _logging_hooks() -> Any:
    """Without hooks the API logs each run and epoch (logger ``mbnas.progress``, INFO)."""
    from mbnas.engine.runs import LoggingHooks

    return LoggingHooks()


def report(run_dirs: Sequence[str | Path] = (), out: str | Path = "report", *,
           evaluation: str | Path | None = None, cache_dir: str | Path | None = None,
           nnunet: Sequence[str] = ()) -> ReportOutcome:
    """Write the HTML report, Table 1, statistics, figures and the NAS reporting card.

    Args:
        run_dirs: Search run folders (default: those of the evaluation).
        out: Report folder.
        evaluation: Folder of :func:`evaluate`; without it the report is search-only.
        cache_dir: Preprocessing cache (for the example segmentations).
        nnunet: nnU-Net results folders (``RESULTS_DIR[:LABEL]``) whose validation
            summaries become rows "trained by nnU-Net".
    """
    from mbnas.driver.report import build_report

    return build_report(list(run_dirs), out, evaluation=evaluation, cache_dir=cache_dir,
                        nnunet=nnunet)


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
    from mbnas.inference.inference import predict as _predict

    return _predict(model_dir, input_path, out_dir, device=device, batch_size=batch_size,
                    on_scan=on_scan, backend=backend)


class _executor:  # noqa: N801 - used as a context manager like a function
    """Use ``given`` as is, or make the named executor, start it, and close it after."""

    def __init__(self, given: Any, name: str, ray: Mapping[str, Any],
                 threads: int | None) -> None:
        self.given, self.name, self.ray, self.threads = given, name, ray, threads
        self.made: Any = None

    def __enter__(self) -> Any:
        if self.given is not None:
            return self.given
        from mbnas.engine.executors import make_executor

        self.made = make_executor(self.name, dict(self.ray), self.threads)
        self.made.start()
        return self.made

    def __exit__(self, *exc: object) -> None:
        if self.made is not None:
            self.made.close()
