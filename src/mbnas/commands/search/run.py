"""`mbnas search`: the driver that joins a strategy, the evaluator and the run folder.

The loop is ask -> evaluate -> tell. After every tell the strategy's state (its random
generator's state included) is written atomically to ``search_state.json``, and the log,
``best.json`` and the progress figure are rewritten from it. Every finished training run
is already in the store by then. So a search killed at any moment restarts from its
last state, asks again for the batch it was working on, gets the runs that finished from
the store and trains only the rest: the trajectory is that of an uninterrupted run.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mbnas.commands.common.dataset import training_data
from mbnas.commands.common.preflight import check_outside_dataset
from mbnas.commands.common.runfolder import RunFolder
from mbnas.commands.search.config import SearchConfig, build_strategy
from mbnas.commands.search.cost import (
    CostSearch,
)
from mbnas.commands.search.resume import load_state, save_state
from mbnas.data.fingerprint import dataset_fingerprint
from mbnas.io import atomic_write_json, atomic_write_text
from mbnas.reporting.noise import standard_error
from mbnas.scoring.fidelity import rung_keys
from mbnas.scoring.fidelity_search import trainings_by_fidelity
from mbnas.scoring.registry import DEFAULT_SCORING, Scorer, ScoringContext, make_scorer
from mbnas.scoring.train import Evaluator
from mbnas.store import ResultStore
from mbnas.strategies import strategy_definition, upgrade_settings
from mbnas.training.failures import RunFailure, last_line
from mbnas.training.protocol import Protocol
from mbnas.training.runs import InProcessExecutor, RunHooks

# Settings that say where and how fast to compute, not what: they may change on resume.
RUNTIME_SETTINGS = ("executor", "device", "cache_dir", "ray", "threads", "runs_per_device",
                    "fuse")
# Settings that may grow on resume: a finished search resumed with a larger budget goes on
# as a search started with it (mbnas.strategies.local); a smaller one is refused.
EXTENDABLE_SETTINGS = ("budget",)
log = logging.getLogger("mbnas.search")


@dataclass
class SearchOutcome:
    folder: Path
    best: dict[str, Any] | None
    best_score: float
    n_evaluated: int
    resumed: bool


def run_search(
    config: SearchConfig,
    out: str | Path,
    hooks: RunHooks | None = None,
    executor: Any = None,
    on_evaluation: Any = None,
    retry_failed: bool = False,
    shared: Path | None = None,
) -> SearchOutcome:
    """Run (or resume) a search into the folder ``out``; see the module docstring.

    Every input is checked before the folder is written. With ``retry_failed`` the
    search is replayed from its seed: finished runs come from the store, failed ones are
    trained again, so the trajectory is the one the search takes had they not failed.
    ``shared``: a folder whose store and weights this search shares with others (the
    repeats of ``--repeats``, see :mod:`mbnas.commands.common.repeats`); default ``out``.

    Raises:
        RunFailure: when a run failed because of the machine (it is retried on resume),
            or when every run of the search failed.
    """
    folder = RunFolder(out, shared)
    out = folder.path
    folder.check(config.device, config.executor)
    check_outside_dataset(out, config.data_dir)
    config, data = search_data(config)
    folder.check_folds(data, config.protocol.folds, config.seed, config.split)
    build_strategy(config, np.random.default_rng(config.seed))  # a bad start: refused now
    fingerprint = dataset_fingerprint(config.data_dir, data)
    with folder.start(config.to_dict(), fingerprint, RUNTIME_SETTINGS,
                      upgrade=upgrade_settings, grow=EXTENDABLE_SETTINGS) as started:
        resumed = started.resumed
        log.info("%s search in %s: space %s, strategy %s, budget %d, protocol %s",
                 "resuming" if resumed else "starting", out, config.space, config.strategy,
                 config.budget, config.protocol.key)
        folds = folder.folds(data, config.protocol.folds, config.seed, config.split)
        ctx = folder.run_context(data, folds, config.device, started.data_fingerprint)
        with folder.open_store() as store:
            if executor is None:  # the config's threads, not the machine's default
                executor = InProcessExecutor(threads=config.threads)
            evaluator = Evaluator(ctx, config.protocol, store, executor, hooks,
                                  retry_failed=retry_failed)
            cost = CostSearch.for_config(config, folder.costs, data)
            strategy = build_strategy(config, np.random.default_rng(config.seed), cost)
            scorer = make_scorer(config.scoring, ScoringContext(
                config, folder, store, evaluator, ctx, cost, hooks))
            state = load_state(folder.state, config, store, RUNTIME_SETTINGS,
                               EXTENDABLE_SETTINGS, rung_keys(config.protocol, config.fidelity))
            if state is not None and not retry_failed:
                strategy.load_state_dict(state)
                if cost is not None:
                    cost.load_state_dict(state)
                scorer.load_state_dict(state.get(_state_key(config)))
            one_shot = strategy_definition(config.strategy).one_shot
            if one_shot:  # a search done by training (DNAS): its networks are the asks
                decoded = _import(one_shot)(config, folder, ctx, cost)
                strategy.offer([g for g, _ in decoded], [lp for _, lp in decoded])
            while (batch := strategy.ask()) is not None:
                if cost is not None:
                    cost.check_batch(batch)
                results = scorer.score(strategy, batch)
                strategy.tell([r.score for r in results])
                log_restart(strategy.history[-len(results):])
                first = strategy.n_evaluated - len(results) + 1  # each result its own number
                for i, r in enumerate(results):
                    se = standard_error([x.score for x in r.runs if x.score is not None])
                    log.info("evaluation %d/%d: score %.4f%s (%d runs, %d trained now) arch %s",
                             first + i, config.budget, r.score,
                             "" if se is None else f" ± {se:.4f} SE", len(r.runs),
                             r.n_trained, r.arch_key)
                state = (strategy.state_dict() if cost is None
                         else cost.state_dict(strategy))
                scorer_state = scorer.state_dict()
                if scorer_state is not None:
                    state[_state_key(config)] = scorer_state
                save_state(folder.state, state, config, RUNTIME_SETTINGS)
                write_outputs(folder, strategy, store, config.protocol, cost, scorer)
                if on_evaluation is not None:
                    on_evaluation(strategy, results)
            scorer.finish(strategy)
            write_outputs(folder, strategy, store, config.protocol, cost, scorer)
            raise_if_all_failed(store, config.protocol.key, "search")
            if config.fidelity:
                log.info("trainings per fidelity: %s", ", ".join(
                    f"{k}: {n}" for k, n in
                    trainings_by_fidelity(store, config.protocol, config.fidelity).items()))
        chosen = chosen_best(strategy, scorer)
        if chosen is not None:
            log.info("finished: %d evaluations, best score %.4f, arch %s",
                     strategy.n_evaluated, chosen[0][1], chosen[0][0].key)
    best, score = chosen[0] if chosen is not None else (None, math.nan)
    return SearchOutcome(out, best.to_dict() if best is not None else None, score,
                         strategy.n_evaluated, resumed)


def search_data(config: SearchConfig) -> tuple[SearchConfig, Any]:
    """The config (with a 3D protocol planned on the dataset) and the data it trains on:
    the cached slices, or for a 3D space the cached volumes (``commands/common/volumes.py``)."""
    if config.protocol.volume is None:
        return config, training_data(config.data_dir, config.cache_dir,
                                     config.protocol.image_size, config.sites_file,
                                     config.protocol.normalisation,
                                     config.protocol.target_spacing,
                                     config.protocol.allow_cropped_labels)
    from mbnas.commands.common.volumes import plan_protocol, training_volumes
    from mbnas.spaces.mbnas import get_space

    levels = get_space(config.space, config.max_depth, config.block).max_depth
    config = dataclasses.replace(config, protocol=plan_protocol(config.protocol,
                                                                config.data_dir, levels))
    return config, training_volumes(config.data_dir, config.cache_dir, config.protocol)


def _import(path: str) -> Any:
    """The function ``module:name`` (a registration names it: the strategies stay light)."""
    import importlib

    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def log_restart(told: list[Any]) -> None:
    """Say in the run log when a batch begins a restart (its start, after a local optimum)."""
    for e in told:
        if e.restart and e.variable is None:
            log.info("restart %d: local optimum reached; evaluation %d starts again from a "
                     "random network", e.restart, e.index + 1)


def _state_key(config: SearchConfig) -> str:
    """Where the scorer's state sits in the checkpoint: ``fidelity`` for the built-in
    method (as before the scoring registry), else the method's name."""
    return "fidelity" if config.scoring == DEFAULT_SCORING else f"scoring:{config.scoring}"


def raise_if_all_failed(store: ResultStore, protocol_key: str, what: str) -> None:
    """Raise :class:`RunFailure` with the first error when no run of ``what`` finished."""
    runs = store.runs(protocol_key=protocol_key)
    if runs and not any(r.status == "finished" for r in runs):
        first = runs[0]
        raise RunFailure(
            f"every run of this {what} failed ({len(runs)} runs); first: run {first.arch_key} "
            f"fold {first.fold} seed {first.seed}: {last_line(first.error)}. Fix the cause, "
            "then run the same command again with --retry-failed")


def write_outputs(folder: RunFolder, strategy: Any, store: ResultStore, protocol: Protocol,
                  cost: CostSearch | None = None, scorer: Scorer | None = None) -> None:
    """Rewrite search_log.jsonl, best.json and the progress figure from the state."""
    lines = []
    for evaluation in strategy.history:
        entry = evaluation.to_dict()
        key = evaluation.key
        runs = [r for r in store.runs(arch_key=key, protocol_key=protocol.key)]
        scores = [float(r.score) for r in runs if r.status == "finished" and r.score is not None]
        lines.append({
            **{k: _finite(v) for k, v in entry.items()},
            "arch_key": key,
            "std": float(np.std(scores)) if scores and len(scores) == len(runs) else None,
            # the spread of the score: standard error over folds x seeds (issue 35)
            "se": standard_error(scores) if scores and len(scores) == len(runs) else None,
            **_threads(runs),
            "seconds": round(sum(r.seconds for r in runs), 3),
            "runs": len(runs),
            # runs whose validation prediction was one class everywhere (suspect scores)
            "constant_runs": sum(1 for r in runs
                                 if (r.metrics or {}).get("constant_prediction") is not None),
            **_raced(runs, protocol),
        })
    if cost is not None:
        lines = cost.annotate_log(strategy, lines)
        cost.write_front(folder.front, strategy, protocol.key)
    if scorer is not None:
        lines = scorer.annotate_log(lines)
    fidelity = getattr(scorer, "fidelity", None)
    text = [json.dumps(e, sort_keys=True, default=_json_default) for e in lines]
    atomic_write_text(folder.search_log, "".join(line + "\n" for line in text))
    from mbnas.store.optuna_mirror import mirror_search_log

    mirror_search_log(folder.path, [json.loads(line) for line in text])
    chosen = chosen_best(strategy, scorer)
    if chosen is not None:
        (best, score), extra = chosen
        atomic_write_json(folder.best, {
            "genotype": best.to_dict(), "arch_key": best.key,
            "score": score,
            "protocol_key": protocol.key,
            **extra,
            **({} if fidelity is None else {"trainings_by_fidelity": trainings_by_fidelity(
                store, protocol, fidelity.rungs)}),
        })
    from mbnas.commands.common.search_runs import progress_label
    from mbnas.reporting.progress_figure import plot_search_progress

    plot_search_progress([(progress_label(folder.read_config()), folder.read_search_log())],
                         folder.progress)


def chosen_best(strategy: Any, scorer: Scorer | None
                ) -> tuple[tuple[Any, float], dict[str, Any]] | None:
    """The search's best (architecture, score) and best.json's extra fields: the
    strategy's best, unless the scorer picks it (``best(strategy)``: a supernet search
    picks by stand-alone score)."""
    pick = getattr(scorer, "best", None)
    if pick is not None:
        return pick(strategy)
    return None if strategy.best is None else (strategy.best, {})


def _raced(runs: list[Any], protocol: Protocol) -> dict[str, str]:
    """The note of a candidate `--race` discarded early (all its runs fine, but fewer)."""
    n_runs = protocol.folds * len(protocol.seeds)
    if not runs or len(runs) >= n_runs or any(r.status != "finished" for r in runs):
        return {}
    from mbnas.scoring.race import race_note

    return {"raced": race_note(len(runs), n_runs)}


def _threads(runs: list[Any]) -> dict[str, Any]:
    """``{"threads": 1}`` (or a list when the runs differ): the CPU threads its runs
    trained with, from the run records (absent from records made before it was stored)."""
    used = sorted({int(t) for r in runs if (t := (r.metrics or {}).get("threads"))})
    if not used:
        return {}
    return {"threads": used[0] if len(used) == 1 else used}


def _finite(value: Any) -> Any:
    """NaN (a failed evaluation) is written as null: JSON has no NaN."""
    return None if isinstance(value, float) and math.isnan(value) else value


def _json_default(value: Any) -> Any:
    if hasattr(value, "to_dict"):
        return value.to_dict()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
