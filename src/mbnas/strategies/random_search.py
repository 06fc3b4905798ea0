"""Random search: uniformly sampled valid genotypes, each evaluated at most once.

Each batch holds up to ``batch_size`` new genotypes from ``space.sample(rng)`` (fewer when
the budget is nearly spent). A sample already evaluated, or already in the batch, is
drawn again; the space counts as exhausted when every genotype of it has been evaluated
(``space.size()``) or when ``max_retries`` draws in a row were all duplicates.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from mbnas.errors import ConfigError
from mbnas.strategies.base import SpaceLike, Strategy, check_start
from mbnas.strategies.records import Batch, Decode, decode_optional, encode
from mbnas.strategies.registry import register_strategy


class RandomSearch(Strategy):
    """Random search with a memo and the same budget rules as local search.

    Args:
        space: the search space (``mbnas.spaces.mbnas`` interface).
        budget: the most architectures to evaluate.
        rng: generator (or seed) for the samples.
        decode: rebuilds a genotype from its ``to_dict()`` (for checkpoints).
        batch_size: genotypes per batch (evaluated in parallel by the driver).
        start: optional genotype evaluated first (e.g. the U-Net preset), then sampling.
        max_retries: duplicate draws in a row after which the space counts as exhausted.

    Raises:
        ConfigError: invalid budget, rng, batch_size or max_retries.
        GenotypeError: ``start`` is not in ``space``.
    """

    name = "random"

    def __init__(self, space: SpaceLike, *, budget: int = 150,
                 rng: np.random.Generator | int | None = None, decode: Decode,
                 batch_size: int = 1, start: Any | None = None,
                 max_retries: int = 1000) -> None:
        super().__init__(budget=budget, rng=rng, decode=decode, space_name=space.name)
        for label, value in (("batch_size", batch_size), ("max_retries", max_retries)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"random search {label} must be an integer >= 1, "
                                  f"not {value!r}")
        self.space = space
        self.batch_size = batch_size
        self.max_retries = max_retries
        self._start = check_start(space, start)
        self._start_done = start is None
        self._exhausted = False
        self._size: int | None = None

    @property
    def stop_reason(self) -> str | None:
        if not self.finished:
            return None
        return "exhausted" if self._exhausted else "budget"

    def _over(self) -> bool:
        return self._exhausted

    def _space_size(self) -> int:
        if self._size is None:
            self._size = int(self.space.size())
        return self._size

    def _propose(self) -> Batch | None:
        ledger = self._ledger
        if self._exhausted or ledger.remaining() <= 0:
            return None
        if not self._start_done:
            if not ledger.known(self._start):
                return Batch((self._start,), self.name)
            self._start_done = True
        wanted = min(self.batch_size, ledger.remaining())
        new: list[Any] = []
        keys: set[str] = set()
        misses = 0
        while len(new) < wanted:
            # Every key in the memo belongs to this space (samples and a checked start).
            if len(ledger.memo) + len(new) >= self._space_size():
                self._exhausted = True
                break
            genotype = self.space.sample(ledger.rng)
            if genotype.key in keys or ledger.known(genotype):
                misses += 1
                if misses >= self.max_retries:
                    self._exhausted = True
                    break
                continue
            misses = 0
            new.append(genotype)
            keys.add(genotype.key)
        return Batch(tuple(new), self.name) if new else None

    def _absorb(self, batch: Batch, scores: list[float | None]) -> list[bool]:
        self._start_done = True
        best = self._ledger.best()
        best_score = None if best is None else best.score
        accepted = []
        for score in scores:
            better = score is not None and (best_score is None or score > best_score)
            if better:
                best_score = score
            accepted.append(better)
        return accepted

    def _state(self) -> dict[str, Any]:
        return {"start": encode(self._start), "start_done": self._start_done,
                "exhausted": self._exhausted}

    def _load_state(self, state: dict[str, Any]) -> None:
        self._start = decode_optional(state["start"], self._decode)
        self._start_done = bool(state["start_done"])
        self._exhausted = bool(state["exhausted"])


@dataclass(frozen=True)
class RandomSearchOptions:
    """Options of random search (``strategy_options:``, ``--strategy-option``).

    Attributes:
        batch_size: Networks asked per batch (trained side by side by the executor).
    """

    batch_size: int = 1


@register_strategy(RandomSearch.name, costs=True, options=RandomSearchOptions,
                   about="random search: networks sampled uniformly from the space (a "
                   "baseline)")
def _make_random(space: SpaceLike, *, budget: int, rng: np.random.Generator | int | None,
                 decode: Decode, start: Any | None, batch_size: int | None = None,
                 restarts: bool = False, options: RandomSearchOptions | None = None,
                 **_: Any) -> RandomSearch:
    if restarts:
        raise ConfigError("restarts: random search has no local optimum to restart from; "
                          "drop --restarts or use --strategy local")
    if batch_size is None:
        batch_size = (options or RandomSearchOptions()).batch_size
    return RandomSearch(space, budget=budget, rng=rng, decode=decode,
                        batch_size=batch_size, start=start)
