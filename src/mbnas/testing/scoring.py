"""The shared check of a scoring method: a tiny real search on a phantom.

:func:`check_scoring` runs the method the way ``mbnas search --scoring NAME`` does (the
search loop, the checkpoint, the log), with random search on a 4-case phantom and a
one-epoch protocol, and checks what every scoring method owes the search:

* every score in ``search_log.jsonl`` is a finite number, or missing (NaN: a failure);
* the same seed gives the same scores (two fresh searches);
* a search that dies between two batches (the scorer raises before scoring the second
  one, as a SIGKILL there would leave it) resumes, run again, to the same log as the
  search that was never interrupted.

A plugin checks its method with ``check_scoring("my-method")`` or with the factory
itself (registered for the check under a temporary name).
"""

from __future__ import annotations

import json
import math
import tempfile
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from mbnas.scoring.registry import SCORINGS, Scorer, ScoringContext, register_scoring

#: The log fields a resumed search must repeat exactly (``seconds`` is wall time).
_COMPARED = ("index", "key", "score", "accepted", "genotype")


class _Killed(Exception):
    """Raised by the check's scorer where a killed search would have stopped."""


class _Dying:
    """Wraps a scorer: the ``kill_at``-th batch is never scored (None: every batch is)."""

    def __init__(self, inner: Scorer, switch: dict[str, int | None]) -> None:
        self.inner = inner
        self.switch = switch
        self.batches = 0

    def score(self, strategy: Any, batch: Sequence[Any]) -> Sequence[Any]:
        self.batches += 1
        if self.switch["kill_at"] == self.batches:
            raise _Killed
        return self.inner.score(strategy, batch)

    def __getattr__(self, name: str) -> Any:  # state_dict, annotate_log, finish, ...
        return getattr(self.inner, name)


def _scores(run: Path) -> list[dict[str, Any]]:
    lines = [json.loads(x) for x in (run / "search_log.jsonl").read_text().splitlines()]
    return [{k: e.get(k) for k in _COMPARED} for e in lines]


def check_scoring(scoring: str | Callable[[ScoringContext], Scorer],
                  folder: str | Path | None = None, *, budget: int = 3, seed: int = 0,
                  kill_at: int = 2) -> list[dict[str, Any]]:
    """Check a scoring method on a tiny phantom search; return the checked log.

    Args:
        scoring: A registered method's name, or a factory ``make(context) -> Scorer``.
        folder: Where the phantom and the runs go (default: a temporary folder,
            removed afterwards).
        budget: Architectures each search scores (random search, one per batch).
        seed: The searches' seed.
        kill_at: The batch before which the interrupted search dies (2: after the first).

    Raises:
        AssertionError: Naming the duty the method broke.
    """
    make = scoring if callable(scoring) else SCORINGS.get(scoring).make
    switch: dict[str, int | None] = {"kill_at": None}
    name = f"check-{uuid.uuid4().hex[:8]}"
    register_scoring(name, about="check_scoring's wrapper")(
        lambda context: _Dying(make(context), switch))
    try:
        if folder is not None:
            return _check(name, Path(folder), budget, seed, kill_at, switch)
        with tempfile.TemporaryDirectory(prefix="mbnas-check-scoring-") as tmp:
            return _check(name, Path(tmp), budget, seed, kill_at, switch)
    finally:
        SCORINGS.unregister(name)


def _check(name: str, root: Path, budget: int, seed: int, kill_at: int,
           switch: dict[str, int | None]) -> list[dict[str, Any]]:
    from mbnas.commands.search.run import SearchConfig, run_search
    from mbnas.data import make_phantom
    from mbnas.strategies.random_search import RandomSearch
    from mbnas.training.protocol import get_protocol

    data = make_phantom(root / "phantom", "spleen", n_cases=4, seed=0, shape=(32, 32, 6))
    protocol = get_protocol("quick", epochs=1, folds=2, seeds=[0], image_size=32,
                            base_channels=4, batch_size=16, precision="fp32",
                            samples_per_epoch=0)

    def search(out: str) -> Path:
        config = SearchConfig(data_dir=str(data), strategy=RandomSearch.name, budget=budget,
                              seed=seed, scoring=name, threads=1, device="cpu",
                              cache_dir=str(root / "cache"), protocol=protocol)
        run_search(config, root / out)
        return root / out

    first = _scores(search("a"))
    assert len(first) == budget, f"{len(first)} log entries for a budget of {budget}"
    for entry in first:
        score = entry["score"]
        assert score is None or (isinstance(score, float) and math.isfinite(score)), \
            f"evaluation {entry['index']}: score {score!r} is neither finite nor a failure"
    assert _scores(search("b")) == first, "the same seed gave other scores"
    switch["kill_at"] = kill_at
    try:
        search("c")
    except _Killed:
        pass
    else:
        raise AssertionError(f"the search ended before batch {kill_at}: nothing to resume")
    switch["kill_at"] = None
    assert _scores(search("c")) == first, \
        "a search resumed after dying between batches wrote another log"
    return first
