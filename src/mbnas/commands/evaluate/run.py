"""`mbnas evaluate`: retrain the best searched networks and the baselines with the final protocol.

The paper's Table 1 protocol: every model (the best network of each search run, and the
hand-crafted baselines) is trained again with the training settings of the search, on
every fold of a fresh patient-level cross-validation, with several seeds (paper: 5
seeds x 5 folds), and measured per validation case in 3D on the scan's original grid
and spacing: Dice, HD95 (mm) and Surface Dice (2 mm), per class and averaged
(``original_grid.py``); and
per 2D slice on the training grid as the paper did (``paper_cases``,
:mod:`mbnas.metrics.slices`). When the protocol narrows the searched networks (fewer
base channels than the paper's 32), the U-Net preset of the search space is trained at
the same width as a baseline too, so that the comparison is on equal terms.

It runs through the same engine, store and executor as the search, into its own folder:
``config.yaml`` (claimed: a rerun with other settings is refused), ``splits.json``,
``store.sqlite``, ``weights/``. So a killed evaluation resumes, and a second run on a
finished folder trains nothing. The results go to ``evaluation.json`` (one
:class:`~mbnas.reporting.report_data.ModelEvaluation` per model, with its cost figures), and each
model's trained runs are exported as a model folder for `mbnas predict`:
``EVAL_DIR/models/<slug>/`` and, for the best network of a search run, ``RUN_DIR/model``.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mbnas.commands.common.dataset import default_cache_dir, training_data
from mbnas.commands.common.evaluation_file import (
    read_evaluation,
    write_evaluation,
)
from mbnas.commands.common.model_cost import measure_costs
from mbnas.commands.common.runfolder import EvaluationFolder
from mbnas.commands.common.search_runs import (
    BASELINE_NAMES,
    EvaluatedModel,
    SearchRun,
    read_search_runs,
)
from mbnas.commands.evaluate.export import export_models, weights_file
from mbnas.commands.evaluate.external import check_externals, evaluate_external, parse_externals
from mbnas.commands.evaluate.front import front_models
from mbnas.commands.evaluate.original_grid import original_grid_metrics
from mbnas.commands.evaluate.results import (
    constant_runs,
    evaluation_file,
    model_evaluation,
    model_width,
)
from mbnas.commands.search.run import raise_if_all_failed
from mbnas.data.fingerprint import dataset_fingerprint
from mbnas.data.sites import check_split
from mbnas.errors import ConfigError
from mbnas.reporting.report_data import ModelEvaluation
from mbnas.scoring.train import Evaluator
from mbnas.spaces.mbnas import BASELINES, Baseline, architecture_from_dict, baseline_name, preset
from mbnas.training.executors import DEFAULT_EXECUTOR
from mbnas.training.fields import check_fields
from mbnas.training.protocol import PROTOCOLS, Protocol
from mbnas.training.runs import RunHooks

__all__ = ["EvaluateConfig", "EvaluateOutcome", "evaluate_config", "evaluation_models",
           "planned_runs", "read_evaluation", "run_evaluation"]
# Where and how fast to compute, and which models: may change when a folder is resumed
# (a new model reuses nothing, an old one reuses its stored runs).
RUNTIME_SETTINGS = ("executor", "device", "cache_dir", "ray", "run_dirs", "baselines",
                    "external", "front")
#: The searched networks' width in the paper; a narrower protocol adds an equal-width U-Net.
PAPER_WIDTH = PROTOCOLS["paper-spleen"].base_channels


@dataclass(frozen=True)
class EvaluateConfig:
    """Every setting of an evaluation; the resolved config is saved in its folder.

    Attributes:
        run_dirs: The search run folders whose best networks are evaluated.
        data_dir: The dataset they all searched.
        protocol: The final protocol: the search's, with the final seeds and folds,
            ``final_metrics`` and ``keep_weights`` on.
        baselines: Names of the hand-crafted baselines to evaluate too.
        split_seed: Seed of the evaluation's cross-validation folds.
        split: ``case``, ``site`` (leave-site-out) or ``group-site`` folds.
        sites_file: A ``case,site`` CSV giving the cases' sites (else dataset.json).
        external: External test sets, ``DATA_DIR[:NAME]`` (see ``commands/evaluate/external.py``).
    """

    run_dirs: tuple[str, ...]
    data_dir: str
    protocol: Protocol
    baselines: tuple[str, ...] = ("smp-unet", "smp-resunet")
    split_seed: int = 0
    executor: str = DEFAULT_EXECUTOR
    device: str = "auto"
    cache_dir: str | None = None
    ray: dict[str, Any] = field(default_factory=dict)
    split: str = "case"
    sites_file: str | None = None
    external: tuple[str, ...] = ()
    front: bool = False  # every archive member of a cost-aware search, not only the best

    def __post_init__(self) -> None:
        check_fields(self, "evaluate")
        check_split(self.split)
        # old spellings (unet, resunet) read as the smp baselines they always meant
        object.__setattr__(self, "baselines", tuple(baseline_name(b) for b in self.baselines))
        unknown = [b for b in self.baselines if b not in BASELINES]
        if unknown:
            raise ConfigError(f"unknown baseline(s) {', '.join(unknown)}; baselines: "
                              f"{', '.join(BASELINES)}")
        if not (self.protocol.final_metrics and self.protocol.keep_weights):
            raise ConfigError("the evaluation protocol needs final_metrics and keep_weights")

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["protocol"] = self.protocol.to_dict()
        d["run_dirs"], d["baselines"] = list(self.run_dirs), list(self.baselines)
        d["external"] = list(self.external)
        return d


def evaluation_protocol(search_protocol: Protocol, seeds: int, folds: int,
                        **overrides: Any) -> Protocol:
    """The search's protocol with the final seeds and folds (and any other overrides)."""
    if seeds < 1:
        raise ConfigError(f"--seeds must be at least 1, got {seeds}")
    d = {**search_protocol.to_dict(), **overrides, "seeds": list(range(seeds)),
         "folds": folds, "final_metrics": True, "keep_weights": True}
    return Protocol.from_dict(d)


def evaluate_config(run_dirs: Sequence[str | Path], *, seeds: int = 5, folds: int = 5,
                    baselines: Sequence[str] = ("smp-unet", "smp-resunet"),
                    protocol: Protocol | None = None, **settings: Any) -> EvaluateConfig:
    """Resolve an evaluation config from search run folders.

    Args:
        run_dirs: Search run folders (each needs ``config.yaml`` and ``best.json``).
        seeds: Seeds per fold (paper: 5).
        folds: Cross-validation folds (paper: 5).
        baselines: Baselines to evaluate too (``("none",)``: none, as on the CLI).
        protocol: The training settings; default: the first run's search protocol.
            Seeds, folds, ``final_metrics`` and ``keep_weights`` are set here.
        **settings: Other :class:`EvaluateConfig` fields (device, executor, ...);
            ``cache_dir`` defaults to the first run's.

    Raises:
        ConfigError: for unusable run folders or runs of different datasets.
    """
    if [b.strip().lower() for b in baselines] == ["none"]:
        baselines = ()  # as the CLI's --baselines none
    runs = read_search_runs(run_dirs)
    base = protocol if protocol is not None else runs[0].protocol
    settings.setdefault("cache_dir", runs[0].config.get("cache_dir"))
    return EvaluateConfig(
        run_dirs=tuple(str(r.folder) for r in runs), data_dir=runs[0].data_dir,
        protocol=evaluation_protocol(base, seeds, folds), baselines=tuple(baselines),
        **settings)


@dataclass
class EvaluateOutcome:
    folder: Path
    evaluations: list[ModelEvaluation]
    n_trained: int
    n_runs: int
    failed: list[str]
    resumed: bool
    model_dirs: dict[str, Path]
    notes: list[str] = field(default_factory=list)


def default_evaluation_dir(run_dirs: Sequence[str | Path]) -> Path:
    """``<parent of the first run folder>/evaluation``."""
    return Path(run_dirs[0]).resolve().parent / "evaluation"


def evaluation_models(config: EvaluateConfig, runs: Sequence[SearchRun] | None = None
                      ) -> list[EvaluatedModel]:
    """Every model an evaluation trains, in order: the searched networks (each archive
    member with ``front``), the baselines, and the U-Net preset at the protocol's width
    when that is narrower than the paper's. The one list both the driver and the
    progress counter use."""
    runs = read_search_runs(config.run_dirs) if runs is None else runs
    models = [EvaluatedModel(r.name, r.genotype, architecture_from_dict(r.genotype).key, r)
              for r in runs]
    if config.front:
        models = front_models(runs, models)
    for b in config.baselines if config.protocol.volume is None else ():  # 2D only
        arch = Baseline(b)
        models.append(EvaluatedModel(BASELINE_NAMES.get(b, b), arch.to_dict(), arch.key))
    if config.protocol.base_channels < PAPER_WIDTH:
        unet = preset("unet")
        models.append(EvaluatedModel(f"U-Net preset (width {config.protocol.base_channels})",
                                     unet.to_dict(), unet.key))
    return models


def planned_runs(config: EvaluateConfig) -> int:
    """The training runs of an evaluation: distinct models x folds x seeds."""
    keys = {m.arch_key for m in evaluation_models(config)}
    return len(keys) * config.protocol.folds * len(config.protocol.seeds)


def _run_threads(executor: Any) -> int:
    """The CPU threads the executor gave each run: latency is measured with as many."""
    from mbnas.training.cpus import default_threads

    threads = getattr(executor, "threads", None)  # every executor's settings carry it
    return int(threads) if threads else default_threads()


def run_evaluation(config: EvaluateConfig, out: str | Path | None = None,
                   hooks: RunHooks | None = None, executor: Any = None,
                   retry_failed: bool = False) -> EvaluateOutcome:
    """Run (or resume) an evaluation into ``out``; see the module docstring.

    The search run folders are locked while it runs (a search still running in one is
    refused: its best network may change), and each gets ``RUN_DIR/model``.
    """
    out = Path(out) if out is not None else default_evaluation_dir(config.run_dirs)
    runs = read_search_runs(config.run_dirs)
    if runs[0].data_dir != str(Path(config.data_dir).resolve()):
        raise ConfigError(f"the search runs searched {runs[0].data_dir}, not {config.data_dir}")
    models = evaluation_models(config, runs)
    protocol = config.protocol
    # Every input is checked before the evaluation folder is written.
    folder = EvaluationFolder(out)
    folder.check(config.device, config.executor)
    if any(out.resolve() == r.folder for r in runs):
        raise ConfigError(f"{out}: is a search run folder given to evaluate; choose another "
                          "--out (default: next to the search runs)")
    data, norm = _data_and_normalisation(config)
    folder.check_folds(data, protocol.folds, config.split_seed, config.split)
    fingerprint = dataset_fingerprint(config.data_dir, data, norm)
    # the search runs are locked too (a search still running may change its best), and
    # must have searched these files
    with folder.start(config.to_dict(), fingerprint, RUNTIME_SETTINGS,
                      read=[r.folder for r in runs]) as started:
        resumed = started.resumed
        logging.getLogger("mbnas.evaluate").info(
            "%s evaluation in %s: %d model(s), %d fold(s) (%s split, seed %d) x %d seed(s), "
            "protocol %s", "resuming" if resumed else "starting", out, len(models),
            protocol.folds, config.split, config.split_seed, len(protocol.seeds), protocol.key)
        check_externals(parse_externals(config.external), data.channel_names,
                        data.label_names)
        folds = folder.folds(data, protocol.folds, config.split_seed, config.split)
        ctx = folder.run_context(data, folds, config.device, started.data_fingerprint)
        with folder.open_store() as store:
            evaluator = Evaluator(ctx, protocol, store, executor, hooks,
                                  retry_failed=retry_failed)
            results = evaluator.evaluate_many([architecture_from_dict(m.architecture)
                                               for m in models])
            raise_if_all_failed(store, protocol.key, "evaluation")
        costs = measure_costs([m.architecture for m in models], data.in_channels,
                              data.n_classes, protocol.base_channels, protocol.image_size,
                              config.device, cache=folder.costs,
                              threads=_run_threads(executor), volume=protocol.volume)
        original = original_grid_metrics(
            folder.original_grid, config.data_dir, data, folds,
            [(m.architecture, r.arch_key, r.fold, r.seed, w) for m, res in
             zip(models, results, strict=True) for r in res.runs
             if r.status == "finished" and (w := weights_file(folder, r)) is not None],
            protocol, config.device)
        evaluations = [model_evaluation(m, res, data.label_names, costs[m.arch_key], original,
                                        model_width(m, protocol))
                       for m, res in zip(models, results, strict=True)]
        failed = sorted({f"{m.name} fold {r.fold} seed {r.seed}" for m, res in
                         zip(models, results, strict=True) for r in res.runs
                         if r.status != "finished"})
        write_evaluation(folder.evaluation, evaluation_file(folder, config, models, results,
                                                            evaluations, data, folds))
        from mbnas.reporting.suspect import suspect_notes

        notes: list[str] = suspect_notes(evaluations, {
            m.name: constant_runs(res) for m, res in zip(models, results, strict=True)})
        for note in notes:
            logging.getLogger("mbnas.evaluate").warning("suspect result: %s", note)
        model_dirs = export_models(folder, models, results, data, protocol, norm, notes)
        if config.external:  # only now, with the trained and exported models
            evaluate_external(folder.external, config.external, model_dirs, data.channel_names,
                              data.label_names, config.device, protocol.surface_tolerance_mm)
        for e in evaluations:
            dice = [c.dice for c in e.cases]
            logging.getLogger("mbnas.evaluate").info(
                "model %s: %d validation cases, mean Dice %.4f", e.name, len(dice),
                sum(dice) / len(dice) if dice else math.nan)
    n_trained = sum({r.arch_key: r.n_trained for r in results}.values())
    n_runs = len({(r.arch_key, r.fold, r.seed) for res in results for r in res.runs})
    return EvaluateOutcome(out, evaluations, n_trained, n_runs, failed, resumed, model_dirs,
                           notes)


def _data_and_normalisation(config: EvaluateConfig) -> tuple[Any, dict[str, Any]]:
    """The data the models train on (slices, or volumes for a 3D protocol) and the
    per-channel normalisation their model folders record."""
    protocol = config.protocol
    if protocol.volume is not None:
        from mbnas.commands.common.volumes import training_volumes, volume_normalisation

        if config.external:
            raise ConfigError("--external is not available for 3D networks yet")
        volumes = training_volumes(config.data_dir, config.cache_dir, protocol)
        return volumes, volume_normalisation(config.data_dir, volumes, protocol)
    from mbnas.inference.model_folder import normalisation_from_cache

    data = training_data(config.data_dir, config.cache_dir, protocol.image_size,
                         config.sites_file, protocol.normalisation, protocol.target_spacing,
                         protocol.allow_cropped_labels)
    return data, normalisation_from_cache(
        config.data_dir, config.cache_dir or default_cache_dir(), protocol.image_size,
        protocol.normalisation, protocol.target_spacing)
