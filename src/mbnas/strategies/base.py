"""What every search strategy shares: ask/tell, the budget, the memo, the history, checkpoints.

A strategy never trains anything. The driver runs::

    while (batch := strategy.ask()) is not None:
        strategy.tell(objective(batch))   # one score per genotype, same order
        save(strategy.state_dict())       # JSON, written atomically

Scores are "higher is better". A failed evaluation is ``None`` or NaN (any non-finite
value counts as failed): it is recorded, but it is worse than anything, so it is never
accepted and never the best.

Only architectures actually trained count against the budget: every score is memoised
by genotype key, and a genotype already evaluated is never asked again.

``state_dict()`` holds everything needed to continue exactly where the search stopped,
including the state of the random generator, which ``load_state_dict`` restores (it is
never re-seeded). Genotypes are stored through ``to_dict()`` and rebuilt with the
``decode`` callable given to the strategy (e.g. ``Genotype.from_dict``).
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from mbnas.errors import ConfigError, GenotypeError
from mbnas.strategies.records import (
    Batch,
    Decode,
    Evaluation,
    rng_from_state,
    rng_state,
)

STATE_FORMAT = "mbnas.search"
STATE_VERSION = 1


class SpaceLike(Protocol):
    """The search-space interface of ``mbnas.spaces.mbnas`` (duck-typed: not imported here)."""

    @property
    def name(self) -> str: ...

    def variables(self) -> tuple[Any, ...]: ...

    def value(self, genotype: Any, variable: Any) -> Any: ...

    def with_value(self, genotype: Any, variable: Any, value: Any) -> Any | None: ...

    def sample(self, rng: np.random.Generator) -> Any: ...

    def contains(self, genotype: Any) -> bool: ...

    def size(self) -> int: ...


class Ledger:
    """Budget, memo, history and random generator; shared by the phases of a search."""

    def __init__(self, budget: int, rng: np.random.Generator) -> None:
        self.budget = budget
        self.rng = rng
        self.history: list[Evaluation] = []
        self.memo: dict[str, float | None] = {}

    @property
    def n_evaluated(self) -> int:
        return len(self.history)

    def remaining(self, limit: int | None = None) -> int:
        """Evaluations left, under the budget and under ``limit`` if given."""
        cap = self.budget if limit is None else min(self.budget, limit)
        return max(0, cap - self.n_evaluated)

    def known(self, genotype: Any) -> bool:
        return genotype.key in self.memo

    def score(self, genotype: Any) -> float | None:
        """Memoised score of an evaluated genotype (None: failed)."""
        return self.memo[genotype.key]

    def best(self, phase: str | None = None) -> Evaluation | None:
        """Highest successful score (of one phase if given); the earliest wins ties."""
        best: Evaluation | None = None
        for e in self.history:
            if e.score is None or (phase is not None and e.phase != phase):
                continue
            if best is None or best.score is None or e.score > best.score:
                best = e
        return best

    def record(self, evaluation: Evaluation) -> None:
        self.history.append(evaluation)
        self.memo[evaluation.key] = evaluation.score

    def accept(self, key: str, probe: Batch) -> None:
        """Mark the evaluation of ``key`` accepted: a move decided after it was recorded
        (a probe the budget cut short, completed when a resume raised the budget).

        Only an evaluation of that same probe (phase, variable, pass and restart of
        ``probe``) is marked: a network memoised from an earlier pass or restart keeps
        the record of what happened when it was evaluated.
        """
        for i, e in enumerate(self.history):
            if (e.key == key and (e.phase, e.variable, e.pass_index, e.restart)
                    == (probe.phase, probe.variable, probe.pass_index, probe.restart)):
                self.history[i] = dataclasses.replace(e, accepted=True)
                return


def as_generator(rng: np.random.Generator | int | None) -> np.random.Generator:
    """A ``numpy.random.Generator`` from a generator (used as is), a seed, or None."""
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or (isinstance(rng, numbers.Integral) and not isinstance(rng, bool)):
        return np.random.default_rng(rng)
    raise ConfigError(f"rng must be a numpy Generator, an integer seed or None, not {rng!r}")


def check_budget(budget: Any) -> int:
    if isinstance(budget, bool) or not isinstance(budget, numbers.Integral) or budget < 0:
        raise ConfigError(f"search budget must be a whole number >= 0, not {budget!r}")
    return int(budget)


def clean_score(score: Any) -> float | None:
    """Score as a float, or None for a failed evaluation (None, NaN or infinite)."""
    if score is None:
        return None
    if isinstance(score, bool) or not isinstance(score, numbers.Real):
        raise TypeError(f"a score must be a real number or None, not {score!r}")
    value = float(score)
    return value if math.isfinite(value) else None


class Strategy(ABC):
    """Base of the search strategies: ask for a batch, be told its scores, checkpoint.

    Subclasses implement ``_propose`` (the next batch of never-evaluated genotypes that
    fits the remaining budget, or None when the search is over), ``_absorb`` (update the
    search with a told batch; return the ``accepted`` flag of each genotype), and
    ``_state`` / ``_load_state`` for their own fields.
    """

    name: str = ""

    def __init__(self, *, budget: int, rng: np.random.Generator | int | None,
                 decode: Decode, space_name: str) -> None:
        if not callable(decode):
            raise ConfigError("a search strategy needs decode: a callable dict -> genotype")
        self._decode = decode
        self._space_name = space_name
        self._ledger = Ledger(check_budget(budget), as_generator(rng))
        self._pending: Batch | None = None
        self._batches = 0
        self._done = False

    # The loop --------------------------------------------------------------------------

    def ask(self) -> list[Any] | None:
        """The next batch of genotypes to evaluate, or None when the search is over.

        Asking again before ``tell`` returns the same batch.
        """
        if self._pending is None and not self._done:
            batch = self._propose()
            if batch is None:
                self._done = True
            else:
                self._pending = batch
        return None if self._pending is None else list(self._pending.genotypes)

    def tell(self, scores: Sequence[float | None]) -> None:
        """Scores of the last asked batch, in the order asked (None or NaN: failed)."""
        batch = self._pending
        if batch is None:
            raise RuntimeError("tell() without a pending batch: call ask() first")
        values = [clean_score(s) for s in scores]
        if len(values) != len(batch.genotypes):
            raise ValueError(f"tell() got {len(values)} scores for a batch of "
                             f"{len(batch.genotypes)} genotypes")
        # Memoise first so that _absorb can compare every candidate by its score.
        for genotype, score in zip(batch.genotypes, values, strict=True):
            self._ledger.memo[genotype.key] = score
        accepted = self._absorb(batch, values)
        for genotype, score, acc in zip(batch.genotypes, values, accepted, strict=True):
            self._ledger.record(Evaluation(
                index=self._ledger.n_evaluated, genotype=genotype, key=genotype.key,
                score=score, phase=batch.phase, variable=batch.variable, accepted=bool(acc),
                batch=self._batches, pass_index=batch.pass_index,
                restart=batch.restart))
        self._pending = None
        self._batches += 1

    # What the driver reads -------------------------------------------------------------

    @property
    def history(self) -> list[Evaluation]:
        """Every evaluation so far, in order (a copy)."""
        return list(self._ledger.history)

    @property
    def best(self) -> tuple[Any, float] | None:
        """(genotype, score) with the highest successful score; None before any success."""
        e = self._ledger.best()
        return None if e is None or e.score is None else (e.genotype, e.score)

    @property
    def n_evaluated(self) -> int:
        """Architectures evaluated (memoised re-visits are not counted)."""
        return self._ledger.n_evaluated

    @property
    def budget(self) -> int:
        return self._ledger.budget

    @property
    def remaining(self) -> int:
        return self._ledger.remaining()

    @property
    def finished(self) -> bool:
        """True once ``ask()`` has returned None, or when the budget is spent."""
        return self._pending is None and (
            self._done or self._over() or self._ledger.remaining() == 0)

    @property
    @abstractmethod
    def stop_reason(self) -> str | None:
        """Why the search stopped: "budget", "local optimum", "exhausted"; None if running."""

    # Checkpoints -----------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly from here; JSON-serialisable."""
        return {
            "format": STATE_FORMAT,
            "version": STATE_VERSION,
            "strategy": self.name,
            "space": self._space_name,
            "budget": self._ledger.budget,
            "rng": rng_state(self._ledger.rng),
            "history": [e.to_dict() for e in self._ledger.history],
            "pending": None if self._pending is None else self._pending.to_dict(),
            "batches": self._batches,
            "strategy_state": self._state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from ``state_dict()`` output, random generator state included.

        The generator this object was given is set to the saved state (it is replaced
        when the saved bit generator is of another type). The budget stays the one this
        object was built with, so a search stopped by its budget can be extended by
        resuming it with a larger one.

        Raises:
            ConfigError: the checkpoint is malformed or belongs to another strategy or
                search space.
        """
        if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
            raise ConfigError("not a search checkpoint (no 'format': 'mbnas.search')")
        if state.get("version") != STATE_VERSION:
            raise ConfigError(f"search checkpoint version {state.get('version')!r} is not "
                              f"supported (this mbnas reads version {STATE_VERSION})")
        for field, mine in (("strategy", self.name), ("space", self._space_name)):
            if state.get(field) != mine:
                raise ConfigError(f"search checkpoint is for {field} {state.get(field)!r}, "
                                  f"not {mine!r}: resume with the same settings")
        try:
            history = [Evaluation.from_dict(e, self._decode) for e in state["history"]]
            pending = state["pending"]
            pending = None if pending is None else Batch.from_dict(pending, self._decode)
            batches = int(state["batches"])
            rng = rng_from_state(state["rng"])
            # Mutate the ledger in place: the phases of a search hold a reference to it.
            ledger = self._ledger
            if type(ledger.rng.bit_generator) is type(rng.bit_generator):
                ledger.rng.bit_generator.state = rng.bit_generator.state  # keep its identity
            else:
                ledger.rng = rng
            ledger.history.clear()
            ledger.memo.clear()
            for e in history:
                ledger.record(e)
            self._pending = pending
            self._batches = batches
            self._done = False
            self._load_state(state["strategy_state"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"search checkpoint is malformed ({type(exc).__name__}: {exc})"
                              ) from None

    # For subclasses --------------------------------------------------------------------

    def _over(self) -> bool:
        """True when the search ended for a reason other than the budget."""
        return False

    @abstractmethod
    def _propose(self) -> Batch | None: ...

    @abstractmethod
    def _absorb(self, batch: Batch, scores: list[float | None]) -> list[bool]: ...

    @abstractmethod
    def _state(self) -> dict[str, Any]: ...

    @abstractmethod
    def _load_state(self, state: dict[str, Any]) -> None: ...


def check_start(space: Any, start: Any | None) -> Any | None:
    """A given start genotype must belong to the space searched."""
    if start is not None and not space.contains(start):
        raise GenotypeError(f"the start genotype {start.key} is not in search space "
                            f"'{space.name}': pick a start of that space, or none")
    return start
