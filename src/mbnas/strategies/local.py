"""Local search: first improvement with a variable neighbourhood of 1 (paper section 2.3).

Following Ottelander et al., "Local search is a remarkably strong baseline for NAS":

1. Evaluate the start (a given genotype, e.g. the U-Net preset, or ``space.sample(rng)``).
2. Visit the variables in a random order (one ``rng.permutation`` per pass). For each,
   probe all its *other* options as one batch (options for which ``space.with_value``
   returns None are invalid there and skipped), and move right away to the best one if
   it is strictly better than the current architecture (ties keep the current one; among
   equally good options the first in option order wins).
3. After the last variable, start a new pass in a new random order; stop after a pass
   that moved nowhere (a local optimum), or when the budget is spent.
4. With ``restarts``, a local optimum is not the end: the search starts again from a new
   ``space.sample(rng)`` (step 1; a start already evaluated is free) until the budget is
   spent, as the authors' code does (``hillClimberMultiple`` in ``src_GOMEA/``). It ends
   early only when every genotype of the space has been evaluated. Every evaluation
   records the restart it belongs to (0: before the first local optimum).

Options already evaluated are taken from the memo and not asked again (so they are free);
when the budget cannot pay for all new options of a variable, the first ones in option
order are evaluated and the search stops after that batch, still on that variable: the
move is decided only once every option is scored. So a finished search resumed with a
larger budget asks for the rest of that variable's options and goes on exactly as a
search started with the larger budget (the move, when it is to an option of the
earlier batch, is then recorded as accepted there).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from mbnas.errors import ConfigError
from mbnas.strategies.base import Ledger, SpaceLike, Strategy, check_start
from mbnas.strategies.pareto import ParetoLocalSearch
from mbnas.strategies.records import Batch, Decode, decode_optional, encode
from mbnas.strategies.registry import DEFAULT_STRATEGY, register_strategy

_STAGES = ("start", "probe", "done")


class LocalWalk:
    """The local-search state machine over one space; several may share a ``Ledger``.

    ``limit`` caps the total number of evaluations in the ledger while this walk runs
    (bilevel search uses it to keep budget for its second phase).
    """

    def __init__(self, space: SpaceLike, ledger: Ledger, *, phase: str,
                 start: Any | None = None, limit: int | None = None,
                 restarts: bool = False) -> None:
        self.space = space
        self.ledger = ledger
        self.phase = phase
        self.limit = limit
        self.variables = tuple(space.variables())
        self.start = check_start(space, start)
        self.current: Any | None = None
        self.stage = "start"
        self.order: list[int] = []
        self.pos = 0
        self.improved = True  # so that the first call draws the order of the first pass
        self.pass_index = 0
        self.probe: list[Any] | None = None  # candidates of the variable being probed
        self.partial = False  # the probe asked only what the budget could pay for
        self.restarts = restarts
        self.restart = 0  # restarts made so far (0: still the first walk)

    def remaining(self) -> int:
        return self.ledger.remaining(self.limit)

    def choose_start(self) -> Any:
        """The start genotype, sampled from the space the first time if none was given."""
        if self.start is None:
            self.start = self.space.sample(self.ledger.rng)
        return self.start

    def propose(self) -> Batch | None:
        """Next batch of new genotypes, or None: local optimum (stage "done") or budget."""
        while True:
            if self.stage == "done":
                return None
            if self.stage == "start":
                start = self.choose_start()
                if not self.ledger.known(start):
                    if self.remaining() <= 0:
                        return None
                    return Batch((start,), self.phase, None,
                                 self.pass_index, self.restart)
                self.current = start
                self.stage = "probe"
                continue
            if self.pos >= len(self.order):
                if not self.improved:
                    if not self.restarts or self._exhausted():
                        self.stage = "done"
                        continue
                    if self.remaining() <= 0:
                        return None  # a resume with a larger budget restarts from here
                    self._restart()
                    continue
                self.order = [int(i) for i in self.ledger.rng.permutation(len(self.variables))]
                self.pos = 0
                self.improved = False
                self.pass_index += 1
            variable = self.variables[self.order[self.pos]]
            candidates, new, truncated = self._candidates(variable)
            if new:
                self.probe, self.partial = candidates, truncated
                return Batch(tuple(new), self.phase, variable.name, self.pass_index,
                             self.restart)
            if truncated:
                # Stay on this variable: a resumed search with a larger budget goes on here.
                return None
            self._decide(candidates)
            self.pos += 1

    def _restart(self) -> None:
        """Leave a local optimum: the next start is a new random genotype of the space."""
        self.restart += 1
        self.start = None
        self.current = None
        self.stage = "start"
        self.order, self.pos = [], 0
        self.improved = True  # the new start draws a new order for its first pass

    def _exhausted(self) -> bool:
        """Whether every genotype of the space has been evaluated (nothing to restart to)."""
        return len(self.ledger.memo) >= self.space.size()

    def absorb(self, batch: Batch, scores: list[float | None]) -> list[bool]:
        """Update with the scores of the batch ``propose`` returned (already memoised)."""
        if self.stage == "start":
            self.current = batch.genotypes[0]
            self.stage = "probe"
            return [scores[0] is not None]
        candidates, self.probe = self.probe or [], None
        if self.partial:  # decided when the rest is scored (a resume with a larger budget)
            self.partial = False
            return [False] * len(batch.genotypes)
        moved = self._decide(candidates)
        self.pos += 1
        asked = {g.key for g in batch.genotypes}
        if moved is not None and moved.key not in asked:
            self.ledger.accept(moved.key, batch)  # scored before the budget was raised
        return [moved is not None and g.key == moved.key for g in batch.genotypes]

    def _candidates(self, variable: Any) -> tuple[list[Any], list[Any], bool]:
        """(the valid other options in option order, the unevaluated ones, truncated):
        when truncated, only the options up to the last one the budget pays for."""
        assert self.current is not None, "candidates are taken around the current network"
        current_value = self.space.value(self.current, variable)
        budget = self.remaining()
        seen = {self.current.key}
        candidates: list[Any] = []
        new: list[Any] = []
        for option in variable.options:
            if option == current_value:
                continue
            genotype = self.space.with_value(self.current, variable, option)
            if genotype is None or genotype.key in seen:
                continue
            seen.add(genotype.key)
            if not self.ledger.known(genotype):
                if len(new) >= budget:
                    return candidates, new, True
                new.append(genotype)
            candidates.append(genotype)
        return candidates, new, False

    def _decide(self, candidates: list[Any]) -> Any | None:
        """Move to the best candidate if strictly better than the current; return it."""
        best, best_score = None, None
        for genotype in candidates:
            score = self.ledger.score(genotype)
            if score is not None and (best_score is None or score > best_score):
                best, best_score = genotype, score
        current_score = self.ledger.score(self.current)
        if best_score is None or (current_score is not None and best_score <= current_score):
            return None
        self.current = best
        self.improved = True
        return best

    def state_dict(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "start": encode(self.start),
            "current": encode(self.current),
            "order": list(self.order),
            "pos": self.pos,
            "improved": self.improved,
            "pass_index": self.pass_index,
            "probe": None if self.probe is None else [g.to_dict() for g in self.probe],
            "partial": self.partial,
            "restart": self.restart,
        }

    def load_state_dict(self, state: dict[str, Any], decode: Decode) -> None:
        if state["stage"] not in _STAGES:
            raise ValueError(f"unknown local-search stage {state['stage']!r}")
        order = [int(i) for i in state["order"]]
        if sorted(order) != list(range(len(self.variables))) and order:
            raise ValueError("the variable order does not match the search space's variables")
        self.stage = state["stage"]
        self.start = decode_optional(state["start"], decode)
        self.current = decode_optional(state["current"], decode)
        self.order = order
        self.pos = int(state["pos"])
        self.improved = bool(state["improved"])
        self.pass_index = int(state["pass_index"])
        probe = state["probe"]
        self.probe = None if probe is None else [decode(g) for g in probe]
        self.partial = bool(state.get("partial", False))  # absent in older checkpoints
        self.restart = int(state.get("restart", 0))


def check_restarts(restarts: Any) -> bool:
    if not isinstance(restarts, bool):
        raise ConfigError(f"restarts must be true or false, not {restarts!r}")
    return restarts


def walk_stop_reason(walk: LocalWalk) -> str:
    """Why a finished walk stopped: its budget, a local optimum, or (with restarts)
    a space whose every genotype was evaluated."""
    if walk.stage != "done":
        return "budget"
    return "exhausted" if walk.restarts else "local optimum"


def full_pass_size(space: SpaceLike) -> int:
    """Evaluations in one full pass of local search: sum over variables of (options - 1)."""
    return sum(max(0, len(v.options) - 1) for v in space.variables())


class LocalSearch(Strategy):
    """First-improvement local search over the variables of one search space.

    Args:
        space: the search space (``mbnas.spaces.mbnas`` interface).
        budget: the most architectures to evaluate (memoised re-visits are free).
        rng: generator (or seed) for the start sample and the variable orders.
        decode: rebuilds a genotype from its ``to_dict()`` (for checkpoints).
        start: genotype to start from (must be in ``space``); None samples one.
        restarts: after a local optimum, start again from a random genotype until the
            budget is spent (the authors' code); False stops at the first one (the paper's
            description).

    Raises:
        GenotypeError: ``start`` is not in ``space``.
        ConfigError: invalid budget or rng.
    """

    name = DEFAULT_STRATEGY  # "local": the paper's search, the default

    def __init__(self, space: SpaceLike, *, budget: int = 150,
                 rng: np.random.Generator | int | None = None, decode: Decode,
                 start: Any | None = None, restarts: bool = False) -> None:
        super().__init__(budget=budget, rng=rng, decode=decode, space_name=space.name)
        self.space = space
        self._walk = LocalWalk(space, self._ledger, phase=self.name, start=start,
                               restarts=check_restarts(restarts))

    @property
    def current(self) -> Any | None:
        """The architecture the search is at (None before the start is evaluated)."""
        return self._walk.current

    @property
    def passes(self) -> int:
        """Passes over the variables started so far."""
        return self._walk.pass_index

    @property
    def restarts(self) -> int:
        """Restarts made so far (after each local optimum, with ``restarts``)."""
        return self._walk.restart

    @property
    def stop_reason(self) -> str | None:
        if not self.finished:
            return None
        return walk_stop_reason(self._walk)

    def _over(self) -> bool:
        return self._walk.stage == "done"

    def _propose(self) -> Batch | None:
        return self._walk.propose()

    def _absorb(self, batch: Batch, scores: list[float | None]) -> list[bool]:
        return self._walk.absorb(batch, scores)

    def _state(self) -> dict[str, Any]:
        return {"walk": self._walk.state_dict()}

    def _load_state(self, state: dict[str, Any]) -> None:
        self._walk.load_state_dict(state["walk"], self._decode)


@register_strategy(LocalSearch.name, costs=True,
                   about="local search: one variable at a time, from the start network (the "
                   "paper's); with cost objectives, Pareto local search")
def _make_local(space: SpaceLike, *, budget: int, rng: np.random.Generator | int | None,
                decode: Decode, start: Any | None,
                figures: Callable[[Any], Mapping[str, float]] | None = None,
                costs: Sequence[str] = (), restarts: bool = False, **_: Any) -> Strategy:
    if costs:
        if restarts:
            raise ConfigError("restarts: Pareto local search (cost objectives) keeps a front "
                              "and does not restart; search Dice alone to use --restarts")
        if figures is None:
            raise ConfigError("Pareto local search needs the cost figures of networks")
        return ParetoLocalSearch(space, budget=budget, rng=rng, decode=decode,
                                 figures=figures, costs=costs, start=start)
    return LocalSearch(space, budget=budget, rng=rng, decode=decode, start=start,
                       restarts=restarts)
