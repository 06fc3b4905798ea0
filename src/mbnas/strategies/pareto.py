"""Pareto local search: Dice against cost figures, over the paper's neighbourhood.

The variant is Paquete et al.'s PLS-1 ("Pareto local search", 2004) with the batches of
the paper's local search (Ottelander et al.):

1. Evaluate the start (given, or sampled). The archive is the set of evaluated networks
   that no other evaluated network dominates; the start enters it if its evaluation
   succeeded. The first network explored is the start.
2. *Exploring* a network probes its whole neighbourhood: the variables in a random
   order (one ``rng.permutation`` per exploration), all other options of one variable
   as one batch (an invalid option, or one over a cost limit, is skipped; one already
   evaluated is free and not asked again).
3. After each batch every new network is offered to the archive: it enters when no
   member *weakly* dominates it (a network equal in every objective to a member stays
   out, so the archive keeps the earliest of equals), and the members it dominates
   leave. A failed evaluation never enters.
4. The explored network's whole neighbourhood is probed even if it has left the archive
   meanwhile; then the next network explored is the earliest-entered archive member not
   yet explored. The search stops when every archive member has been explored (a Pareto
   local optimum set) or when the budget is spent.

Objectives: the score (Dice, higher is better) and the cost figures named in ``costs``
(lower is better), read through ``figures(genotype)``, computed outside this package.
The cost figures of every evaluated network are kept in the state, so a resumed search
does not need to recompute them. With no cost objective the archive would hold only the
best networks: use :class:`~mbnas.strategies.local.LocalSearch` for Dice alone.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from mbnas.costs.registry import COSTS, objective_names
from mbnas.errors import ConfigError
from mbnas.strategies.base import SpaceLike, Strategy, check_start
from mbnas.strategies.records import Batch, Decode, decode_optional, encode

_STAGES = ("start", "explore", "done")


def dominates(a: Sequence[float], b: Sequence[float]) -> bool:
    """``a`` is at least as good as ``b`` everywhere and better somewhere (maximising)."""
    return all(x >= y for x, y in zip(a, b, strict=True)) and any(
        x > y for x, y in zip(a, b, strict=True))


def objective_vector(score: float, figures: Mapping[str, float],
                     costs: Sequence[str]) -> tuple[float, ...]:
    """(score, -cost_1, -cost_2, ...): every component is maximised (a figure registered
    with ``direction="max"`` keeps its sign)."""
    return (float(score), *(COSTS.get(c).oriented(figures[c]) for c in costs))


def pareto_front(points: Sequence[tuple[str, Sequence[float]]]) -> list[str]:
    """Keys of the non-dominated points, in order; of equal points the first is kept.

    This is the archive that offering ``points`` one by one to an empty archive gives.
    """
    archive: list[tuple[str, tuple[float, ...]]] = []
    for key, vector in points:
        vector = tuple(vector)
        if any(m == vector or dominates(m, vector) for _, m in archive):
            continue
        archive = [(k, m) for k, m in archive if not dominates(vector, m)]
        archive.append((key, vector))
    return [k for k, _ in archive]


class ParetoLocalSearch(Strategy):
    """Pareto local search (PLS-1) with an archive of non-dominated networks.

    Args:
        space: the search space (``mbnas.spaces.mbnas`` interface, possibly a LimitedSpace).
        budget: the most architectures to evaluate.
        rng: generator (or seed) for the start sample and the variable orders.
        decode: rebuilds a genotype from its ``to_dict()``.
        figures: genotype -> cost figures, at least those named in ``costs``.
        costs: the cost objectives (``params``, ``macs``, ``memory``, ``latency``).
        start: genotype to start from (must be in ``space``); None samples one.
    """

    name = "pareto"

    def __init__(self, space: SpaceLike, *, budget: int = 150,
                 rng: np.random.Generator | int | None = None, decode: Decode,
                 figures: Callable[[Any], Mapping[str, float]], costs: Sequence[str],
                 start: Any | None = None) -> None:
        super().__init__(budget=budget, rng=rng, decode=decode, space_name=space.name)
        costs = tuple(costs)
        valid = objective_names()
        bad = [c for c in costs if c not in valid]
        if not costs or bad or len(set(costs)) != len(costs):
            raise ConfigError(f"Pareto local search needs distinct cost objectives among "
                              f"{', '.join(valid)}; got {', '.join(costs) or 'none'}")
        self.space = space
        self.costs = costs
        self._figures_of = figures
        self._variables = tuple(space.variables())
        self._start = check_start(space, start)
        self._stage = "start"
        self._figures: dict[str, dict[str, float]] = {}
        self._archive: list[str] = []
        self._explored: list[str] = []
        self._member: Any | None = None
        self._order: list[int] = []
        self._pos = 0
        self._explorations = 0
        self._partial = False  # the probe asked only what the budget could pay for

    # What the driver and the tests read ------------------------------------------------

    @property
    def archive(self) -> list[tuple[Any, float, dict[str, float]]]:
        """(genotype, score, cost figures) of each archive member, in order of entry."""
        by_key = {e.key: e for e in self._ledger.history}
        return [(by_key[k].genotype, float(by_key[k].score or 0.0), dict(self._figures[k]))
                for k in self._archive]  # members are successful: their score is set

    def figures(self, key: str) -> dict[str, float]:
        """Cost figures of an evaluated network."""
        return dict(self._figures[key])

    @property
    def stop_reason(self) -> str | None:
        if not self.finished:
            return None
        return "Pareto local optimum" if self._stage == "done" else "budget"

    # The state machine -----------------------------------------------------------------

    def _over(self) -> bool:
        return self._stage == "done"

    def _propose(self) -> Batch | None:
        ledger = self._ledger
        while True:
            if self._stage == "done":
                return None
            if self._stage == "start":
                if self._start is None:
                    self._start = self.space.sample(ledger.rng)
                if ledger.remaining() <= 0:
                    return None
                return Batch((self._start,), "pareto", None, 0)
            if self._member is None:
                self._member = self._next_member()
                if self._member is None:
                    self._stage = "done"
                    continue
                self._order = [int(i) for i in ledger.rng.permutation(len(self._variables))]
                self._pos = 0
                self._explorations += 1
            if self._pos >= len(self._order):
                self._explored.append(self._member.key)
                self._member = None
                continue
            variable = self._variables[self._order[self._pos]]
            new, truncated = self._new_neighbours(variable)
            if new:
                # A probe cut short by the budget stays on its variable: a resume with a
                # larger budget asks for the rest, as a larger budget would have.
                self._partial = truncated
                return Batch(tuple(new), "pareto", variable.name, self._explorations)
            if truncated:
                return None  # a resumed search with a larger budget goes on here
            self._pos += 1

    def _next_member(self) -> Any | None:
        if not self._explored:
            return self._start
        by_key = {e.key: e.genotype for e in self._ledger.history}
        for key in self._archive:
            if key not in self._explored:
                return by_key[key]
        return None

    def _new_neighbours(self, variable: Any) -> tuple[list[Any], bool]:
        """(the unevaluated valid other options of ``variable``, truncated by budget)."""
        member = self._member
        assert member is not None, "a neighbourhood is probed around a member"
        current = self.space.value(member, variable)
        budget = self._ledger.remaining()
        seen = {member.key}
        new: list[Any] = []
        for option in variable.options:
            if option == current:
                continue
            genotype = self.space.with_value(member, variable, option)
            if genotype is None or genotype.key in seen:
                continue
            seen.add(genotype.key)
            if not self._ledger.known(genotype):
                if len(new) >= budget:
                    return new, True
                new.append(genotype)
        return new, False

    def _absorb(self, batch: Batch, scores: list[float | None]) -> list[bool]:
        accepted = []
        for genotype, score in zip(batch.genotypes, scores, strict=True):
            figures = self._figures_of(genotype)
            self._figures[genotype.key] = {c: float(figures[c]) for c in self.costs}
            accepted.append(score is not None and self._offer(genotype.key, score))
        if self._stage == "start":
            self._stage = "explore"
        elif self._partial:
            self._partial = False
        else:
            self._pos += 1
        return accepted

    def _vector(self, key: str, score: float | None) -> tuple[float, ...]:
        assert score is not None, "only successful networks are compared"
        return objective_vector(score, self._figures[key], self.costs)

    def _offer(self, key: str, score: float) -> bool:
        """Offer an evaluated network to the archive; True when it enters."""
        vector = self._vector(key, score)
        members = [(k, self._vector(k, self._ledger.memo[k])) for k in self._archive]
        if any(m == vector or dominates(m, vector) for _, m in members):
            return False
        self._archive = [k for k, m in members if not dominates(vector, m)] + [key]
        return True

    # Checkpoints -----------------------------------------------------------------------

    def _state(self) -> dict[str, Any]:
        return {
            "costs": list(self.costs), "stage": self._stage, "start": encode(self._start),
            "figures": self._figures, "archive": list(self._archive),
            "explored": list(self._explored), "member": encode(self._member),
            "order": list(self._order), "pos": self._pos,
            "explorations": self._explorations, "partial": self._partial,
        }

    def _load_state(self, state: dict[str, Any]) -> None:
        if list(state["costs"]) != list(self.costs):
            raise ValueError(f"the checkpoint's objectives are dice,{','.join(state['costs'])}")
        if state["stage"] not in _STAGES:
            raise ValueError(f"unknown Pareto-search stage {state['stage']!r}")
        self._stage = state["stage"]
        self._start = decode_optional(state["start"], self._decode)
        self._figures = {k: {c: float(v) for c, v in f.items()}
                         for k, f in state["figures"].items()}
        self._archive = [str(k) for k in state["archive"]]
        self._explored = [str(k) for k in state["explored"]]
        self._member = decode_optional(state["member"], self._decode)
        self._order = [int(i) for i in state["order"]]
        self._pos = int(state["pos"])
        self._explorations = int(state["explorations"])
        self._partial = bool(state.get("partial", False))  # absent in older checkpoints

