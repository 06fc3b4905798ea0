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
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mbnas.driver.dataset import fold_case_ids, training_data
from mbnas.driver.runfolder import RunLock, claim_config
from mbnas.engine.config import Protocol, reject_unknown
from mbnas.engine.evaluator import Evaluator
from mbnas.engine.runs import RunContext, RunHooks
from mbnas.errors import ConfigError
from mbnas.io import atomic_write_json, atomic_write_text
from mbnas.search import BilevelSearch, make_strategy
from mbnas.space import architecture_from_dict, get_space, kernel_space, preset
from mbnas.store import ResultStore

SPACES = ("mbnas", "macro", "micro", "bilevel")
STRATEGIES = ("local", "random")
# Settings that say where and how fast to compute, not what: they may change on resume.
RUNTIME_SETTINGS = ("executor", "device", "cache_dir", "ray", "threads", "runs_per_device",
                    "fuse")


@dataclass(frozen=True)
class SearchConfig:
    """Every setting of a search; the resolved config is saved in the run folder."""

    data_dir: str
    space: str = "mbnas"
    strategy: str = "local"
    budget: int = 150
    seed: int = 0
    start: str = "random"
    max_depth: int = 4
    protocol: Protocol = field(default_factory=Protocol)
    executor: str = "inprocess"
    threads: int | None = None
    device: str = "auto"
    cache_dir: str | None = None
    ray: dict[str, Any] = field(default_factory=dict)
    runs_per_device: int = 1
    fuse: bool = False
    race: bool = False

    def __post_init__(self) -> None:
        if self.space not in SPACES:
            raise ConfigError(f"unknown space {self.space!r}; choose one of {', '.join(SPACES)}")
        if self.strategy not in STRATEGIES:
            raise ConfigError(
                f"unknown strategy {self.strategy!r}; choose one of {', '.join(STRATEGIES)}"
            )
        if self.budget < 1:
            raise ConfigError(f"budget must be at least 1, got {self.budget}")
        if self.space == "bilevel" and self.strategy != "local":
            raise ConfigError("the bilevel space is searched with the local strategy only")

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["protocol"] = self.protocol.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SearchConfig:
        d = dict(d)
        reject_unknown(cls, d, "search")
        protocol = Protocol.from_dict(d.pop("protocol", {}) or {})
        return cls(protocol=protocol, **d)


def build_strategy(config: SearchConfig, rng: np.random.Generator):  # noqa: ANN201
    """The strategy object for a config (not yet started)."""
    start = None if config.start == "random" else preset(config.start)
    if config.space == "bilevel":
        return BilevelSearch(
            topology_space=get_space("bilevel-topology", config.max_depth),
            kernel_space_for=kernel_space, budget=config.budget, rng=rng,
            decode=architecture_from_dict, start=start,
        )
    space = get_space(config.space, config.max_depth)
    if start is not None and not space.contains(start):
        raise ConfigError(f"start {config.start!r} is not a network of the {config.space} space")
    return make_strategy(
        config.strategy, space=space, budget=config.budget, rng=rng,
        decode=architecture_from_dict, start=start,
    )


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
) -> SearchOutcome:
    """Run (or resume) a search into the folder ``out``; see the module docstring."""
    out = Path(out)
    with RunLock(out):
        resumed = claim_config(out, config.to_dict(), ignore=RUNTIME_SETTINGS)
        data = training_data(config.data_dir, config.cache_dir, config.protocol.image_size)
        folds = fold_case_ids(out / "splits.json", data, config.protocol.folds, config.seed)
        ctx = RunContext(data, folds, config.device, str(out / "weights"))
        state_path = out / "search_state.json"
        with ResultStore(out / "store.sqlite") as store:
            evaluator = Evaluator(ctx, config.protocol, store, executor, hooks)
            strategy = build_strategy(config, np.random.default_rng(config.seed))
            if state_path.exists():
                strategy.load_state_dict(json.loads(state_path.read_text()))
            while (batch := strategy.ask()) is not None:
                if config.race:
                    from mbnas.engine.race import race_many, score_to_beat

                    results = race_many(evaluator, batch, score_to_beat(strategy))
                else:
                    results = evaluator.evaluate_many(batch)
                strategy.tell([r.score for r in results])
                atomic_write_json(state_path, strategy.state_dict())
                write_outputs(out, strategy, store, config.protocol)
                if on_evaluation is not None:
                    on_evaluation(strategy, results)
            write_outputs(out, strategy, store, config.protocol)
    best, score = strategy.best or (None, math.nan)
    return SearchOutcome(out, best.to_dict() if best is not None else None, score,
                         strategy.n_evaluated, resumed)


def write_outputs(out: Path, strategy: Any, store: ResultStore, protocol: Protocol) -> None:
    """Rewrite search_log.jsonl, best.json and the progress figure from the state."""
    lines = []
    for evaluation in strategy.history:
        entry = evaluation.to_dict()
        key = evaluation.key
        runs = [r for r in store.runs(arch_key=key, protocol_key=protocol.key)]
        scores = [r.score for r in runs if r.status == "finished"]
        lines.append(json.dumps({
            **{k: _finite(v) for k, v in entry.items()},
            "arch_key": key,
            "std": float(np.std(scores)) if scores and len(scores) == len(runs) else None,
            "seconds": round(sum(r.seconds for r in runs), 3),
            "runs": len(runs),
            **_raced(runs, protocol),
        }, sort_keys=True, default=_json_default))
    atomic_write_text(out / "search_log.jsonl", "".join(line + "\n" for line in lines))
    if strategy.best is not None:
        best, score = strategy.best
        atomic_write_json(out / "best.json", {
            "genotype": best.to_dict(), "arch_key": best.key,
            "score": score,
            "protocol_key": protocol.key,
        })
    from mbnas.report.progress import plot_search_progress

    plot_search_progress([out], out / "progress")


def _raced(runs: list[Any], protocol: Protocol) -> dict[str, str]:
    """The note of a candidate `--race` discarded early (all its runs fine, but fewer)."""
    n_runs = protocol.folds * len(protocol.seeds)
    if not runs or len(runs) >= n_runs or any(r.status != "finished" for r in runs):
        return {}
    from mbnas.engine.race import race_note

    return {"raced": race_note(len(runs), n_runs)}


def _finite(value: Any) -> Any:
    """NaN (a failed evaluation) is written as null: JSON has no NaN."""
    return None if isinstance(value, float) and math.isnan(value) else value


def _json_default(value: Any) -> Any:
    if hasattr(value, "to_dict"):
        return value.to_dict()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
