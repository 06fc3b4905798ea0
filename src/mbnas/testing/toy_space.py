"""A small search space with the interface of ``mbnas.spaces.mbnas`` (for the strategy tests).

Each node l has four variables like the MB-NAS space: a{l} (channels factor, 1/2/4),
b{l} (block), c{l} (kernel size), d{l} (skip source). One rule makes some combinations
invalid, like the real space's "changing a may invalidate d": a node is valid only if
d{l} < a{l}. ``with_value`` returns None for an invalid change (it never repairs).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from mbnas.spaces.languages import Variable

OPTIONS: dict[str, tuple[Any, ...]] = {
    "a": (1, 2, 4),
    "b": ("vgg", "residual", "dense"),
    "c": (1, 3, 5, 7),
    "d": (0, 1, 2, 3),
}
DEFAULTS = {"a": 4, "b": "vgg", "c": 3, "d": 0}


@dataclass(frozen=True)
class ToyGenotype:
    values: tuple[tuple[str, Any], ...]  # sorted (variable name, value) pairs

    def __getitem__(self, name: str) -> Any:
        return dict(self.values)[name]

    def replace(self, **changes: Any) -> ToyGenotype:
        return ToyGenotype(tuple(sorted({**dict(self.values), **changes}.items())))

    def to_dict(self) -> dict[str, Any]:
        return {"values": dict(self.values)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ToyGenotype:
        return cls(tuple(sorted(data["values"].items())))

    @property
    def key(self) -> str:
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def make_genotype(n_nodes: int, **values: Any) -> ToyGenotype:
    """Genotype with the defaults, changed by keyword (e.g. ``a1=2, d1=1``)."""
    base = {f"{k}{n}": v for n in range(1, n_nodes + 1) for k, v in DEFAULTS.items()}
    return ToyGenotype(tuple(sorted({**base, **values}.items())))


def node_valid(values: dict[str, Any], node: int) -> bool:
    return values[f"d{node}"] < values[f"a{node}"]


class ToySpace:
    """Searches the variables of the kinds in ``searched``; the others keep ``fixed``'s."""

    def __init__(self, name: str, n_nodes: int = 3, searched: str = "abcd",
                 fixed: ToyGenotype | None = None) -> None:
        self.name = name
        self.n_nodes = n_nodes
        self.fixed = fixed if fixed is not None else make_genotype(n_nodes)
        self._variables = tuple(
            Variable(f"{kind}{node}", node, kind, OPTIONS[kind])
            for node in range(1, n_nodes + 1) for kind in "abcd" if kind in searched)
        self.rejected = 0  # with_value calls answered None: proves the tests hit them

    def variables(self) -> tuple[Variable, ...]:
        return self._variables

    def value(self, genotype: ToyGenotype, variable: Variable) -> Any:
        return genotype[variable.name]

    def with_value(self, genotype: ToyGenotype, variable: Variable,
                   value: Any) -> ToyGenotype | None:
        changed = genotype.replace(**{variable.name: value})
        if not node_valid(dict(changed.values), variable.node):
            self.rejected += 1
            return None
        return changed

    def neighbours(self, genotype: ToyGenotype) -> list[ToyGenotype]:
        out = []
        for v in self._variables:
            for option in v.options:
                if option != genotype[v.name]:
                    g = self.with_value(genotype, v, option)
                    if g is not None:
                        out.append(g)
        return out

    def _node_choices(self, node: int) -> list[dict[str, Any]]:
        """Valid value combinations of the searched variables of one node."""
        names = [v.name for v in self._variables if v.node == node]
        fixed = dict(self.fixed.values)
        choices = []
        for combo in itertools.product(*(OPTIONS[n[0]] for n in names)):
            values = {**fixed, **dict(zip(names, combo, strict=True))}
            if node_valid(values, node):
                choices.append(dict(zip(names, combo, strict=True)))
        return choices

    def sample(self, rng: np.random.Generator) -> ToyGenotype:
        # Nodes are independent, so a uniform choice per node is uniform over the space.
        values: dict[str, Any] = {}
        for node in range(1, self.n_nodes + 1):
            choices = self._node_choices(node)
            values.update(choices[int(rng.integers(len(choices)))])
        return self.fixed.replace(**values)

    def contains(self, genotype: ToyGenotype) -> bool:
        values = dict(genotype.values)
        if set(values) != {n for n, _ in self.fixed.values}:
            return False
        searched = {v.name for v in self._variables}
        for name, value in values.items():
            if name not in searched and value != self.fixed[name]:
                return False
            if value not in OPTIONS[name[0]]:
                return False
        return all(node_valid(values, n) for n in range(1, self.n_nodes + 1))

    def size(self) -> int:
        return math.prod(len(self._node_choices(n)) for n in range(1, self.n_nodes + 1))


def topology_space(n_nodes: int = 3) -> ToySpace:
    """Bilevel phase 1: channels and skips searched, VGG blocks, kernel 3."""
    return ToySpace("toy-topology", n_nodes, searched="ad")


def kernel_space(topology: ToyGenotype) -> ToySpace:
    """Bilevel phase 2: only the kernel sizes, everything else fixed to ``topology``."""
    n_nodes = len(topology.values) // 4
    return ToySpace("toy-kernel", n_nodes, searched="c", fixed=topology)


def separable_objective(n_nodes: int, seed: int = 0) -> Callable[[ToyGenotype], float]:
    """Sum of one weight per (variable, value), distinct within a variable.

    The weights of a{l} grow with a and those of the other variables are random, so the
    best value of each variable is unique and the optimum (a=4 everywhere) is valid and
    reachable by single-variable moves from any start: no other local optimum exists.
    """
    rng = np.random.default_rng(seed)
    weights: dict[tuple[str, Any], float] = {}
    for node in range(1, n_nodes + 1):
        for kind, options in OPTIONS.items():
            ws = np.sort(rng.random(len(options))) if kind == "a" else rng.permutation(
                np.linspace(0.1, 1.0, len(options)))
            for option, w in zip(options, ws, strict=True):
                weights[(f"{kind}{node}", option)] = float(w)

    def objective(genotype: ToyGenotype) -> float:
        return sum(weights[(name, value)] for name, value in genotype.values)

    objective.weights = weights  # type: ignore[attr-defined]
    return objective


def optimum_of(objective: Callable[[ToyGenotype], float], space: ToySpace) -> ToyGenotype:
    """Best genotype of a separable objective (per-variable argmax; a=4 makes it valid)."""
    weights = objective.weights  # type: ignore[attr-defined]

    def best_option(name: str, options: tuple[Any, ...]) -> Any:
        return max(options, key=lambda o: weights[(name, o)])

    best = {v.name: best_option(v.name, v.options) for v in space.variables()}
    return space.fixed.replace(**best)


def drive(strategy: Any, objective: Callable[[ToyGenotype], float | None],
          max_batches: int | None = None) -> list[list[ToyGenotype]]:
    """The driver loop: ask, evaluate in order, tell. Returns the batches asked."""
    batches: list[list[ToyGenotype]] = []
    while max_batches is None or len(batches) < max_batches:
        batch = strategy.ask()
        if batch is None:
            break
        batches.append(batch)
        strategy.tell([objective(g) for g in batch])
    return batches


def changed_variables(a: ToyGenotype, b: ToyGenotype) -> list[str]:
    return [name for (name, x), (_, y) in zip(a.values, b.values, strict=True) if x != y]


def flatten(batches: Iterable[list[ToyGenotype]]) -> list[ToyGenotype]:
    return [g for batch in batches for g in batch]


#: What a trajectory is: the evaluations in order (not their batch numbers, which a
#: budget raised in the middle of a batch splits in two).
TRAJECTORY = ("index", "key", "score", "phase", "variable", "accepted", "pass_index")


def trajectory(strategy: Any) -> list[dict[str, Any]]:
    return [{k: e.to_dict()[k] for k in TRAJECTORY} for e in strategy.history]


def extended_budgets(build: Callable[[int, int], Any], larger: int,
                     objective: Callable[[ToyGenotype], float | None],
                     seed: int = 21) -> list[int]:
    """Budgets b at which a finished search, resumed with budget ``larger``, goes on as the
    search started with ``larger`` (asserted); returns every b tried with success.

    ``build(seed, budget)`` makes the strategy. For each b below the larger search's
    evaluations, the search with budget b runs to its end; when its history is the larger
    search's beginning, its JSON checkpoint is loaded by a strategy of another seed and
    budget ``larger``, whose whole trajectory must then be the larger search's.
    """
    reference = build(seed, larger)
    drive(reference, objective)
    keys = [e.key for e in reference.history]
    done = []
    for budget in range(1, reference.n_evaluated):
        first = build(seed, budget)
        drive(first, objective)
        assert first.finished
        if [e.key for e in first.history] != keys[:first.n_evaluated]:
            continue
        state = json.loads(json.dumps(first.state_dict(), allow_nan=False))
        resumed = build(seed + 1000, larger)
        resumed.load_state_dict(state)
        drive(resumed, objective)
        assert trajectory(resumed) == trajectory(reference), f"extended from budget {budget}"
        assert resumed.best == reference.best
        assert resumed.stop_reason == reference.stop_reason
        done.append(budget)
    return done
