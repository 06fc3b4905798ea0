"""Bilevel search (paper section 2.4, "Bilevel-NAS"): topology first, then kernel sizes.

Phase 1 ("topology") runs local search in the topology space (VGG blocks). Phase 2
("kernel") runs local search in ``kernel_space_for(best_topology)``, starting from the
best topology of phase 1 (already evaluated, so it costs nothing). Both phases share one
budget, one memo and one history.

Budget rule: phase 2 is guaranteed one full pass, ``reserve = sum over the variables of
kernel_space_for(start topology) of (options - 1)``, computed once from phase 1's start.
Phase 1 may use ``max(1, budget - reserve)`` evaluations (so with a budget smaller than
one phase-2 pass, phase 1 evaluates only its start); phase 2 gets everything left,
including what phase 1 did not use when it reached a local optimum early.

With ``restarts`` each phase restarts from a new random genotype of its own space after
a local optimum (phase 2: random kernel sizes on the best topology), so phase 1 spends
its whole share ``budget - reserve`` and phase 2 everything left.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from mbnas.errors import ConfigError
from mbnas.spaces.registry import MACRO_SPACE
from mbnas.strategies.base import SpaceLike, Strategy
from mbnas.strategies.local import LocalWalk, check_restarts, full_pass_size, walk_stop_reason
from mbnas.strategies.records import Batch, Decode, decode_optional, encode
from mbnas.strategies.registry import register_strategy

TOPOLOGY = "topology"
KERNEL = "kernel"
# The name phase 1's space had in checkpoints written before Bilevel-NAS was a strategy
# over the macro space (then "space: bilevel" in config.yaml); read as the macro space.
LEGACY_TOPOLOGY_SPACE = "bilevel-topology"


class BilevelSearch(Strategy):
    """Local search over the topology, then over the kernel sizes of the best topology.

    Args:
        topology_space: phase-1 space (only topology variables searched).
        kernel_space_for: topology genotype -> phase-2 space (only kernel variables).
        budget: the most architectures evaluated over both phases.
        rng: generator (or seed) for the start sample and the variable orders.
        decode: rebuilds a genotype from its ``to_dict()`` (for checkpoints).
        start: phase-1 start genotype (must be in ``topology_space``); None samples one.
        reserve: evaluations kept for phase 2; None: one full pass (see module docstring).
        restarts: in each phase, restart from a random genotype after a local optimum
            until that phase's budget is spent.

    Raises:
        ConfigError: invalid budget, rng, reserve or kernel_space_for.
        GenotypeError: ``start`` is not in ``topology_space``.
    """

    name = "bilevel"

    def __init__(self, topology_space: SpaceLike,
                 kernel_space_for: Callable[[Any], SpaceLike], *, budget: int = 150,
                 rng: np.random.Generator | int | None = None, decode: Decode,
                 start: Any | None = None, reserve: int | None = None,
                 restarts: bool = False) -> None:
        super().__init__(budget=budget, rng=rng, decode=decode,
                         space_name=topology_space.name)
        if not callable(kernel_space_for):
            raise ConfigError("bilevel search needs kernel_space_for: topology -> space")
        if reserve is not None and (isinstance(reserve, bool) or not isinstance(reserve, int)
                                    or reserve < 0):
            raise ConfigError(f"bilevel reserve must be an integer >= 0, not {reserve!r}")
        self.topology_space = topology_space
        self.kernel_space_for = kernel_space_for
        self._reserve = reserve
        self._restarts = check_restarts(restarts)
        self._topology_walk = LocalWalk(topology_space, self._ledger, phase=TOPOLOGY,
                                        start=start, restarts=self._restarts)
        self._kernel_walk: LocalWalk | None = None
        self._topology: Any | None = None  # the phase-2 starting point

    @property
    def phase(self) -> str:
        """The phase running now: "topology" or "kernel"."""
        return TOPOLOGY if self._kernel_walk is None else KERNEL

    @property
    def reserve(self) -> int | None:
        """Evaluations kept for phase 2 (None until phase 1's start is known)."""
        return self._reserve

    @property
    def topology(self) -> Any | None:
        """The best topology of phase 1, where phase 2 started (None during phase 1)."""
        return self._topology

    @property
    def stop_reason(self) -> str | None:
        if not self.finished:
            return None
        if self._kernel_walk is None:
            return "budget"
        return walk_stop_reason(self._kernel_walk)

    def _over(self) -> bool:
        return self._kernel_walk is not None and self._kernel_walk.stage == "done"

    def _phase1_limit(self) -> int:
        assert self._reserve is not None
        return max(1, self._ledger.budget - self._reserve)

    def _propose(self) -> Batch | None:
        if self._kernel_walk is None:
            if self._ledger.remaining() <= 0:
                return None
            walk = self._topology_walk
            if self._reserve is None:
                start = walk.choose_start()
                self._reserve = full_pass_size(self.kernel_space_for(start))
            walk.limit = self._phase1_limit()
            batch = walk.propose()
            if batch is not None:
                return batch
            if self._ledger.remaining() <= 0:
                return None
            self._start_kernel_phase()
        assert self._kernel_walk is not None
        return self._kernel_walk.propose()

    def _start_kernel_phase(self) -> None:
        best = self._ledger.best(phase=TOPOLOGY)
        walk = self._topology_walk
        # If every topology evaluation failed, go on from where phase 1 stood.
        if best is not None:
            topology = best.genotype
        else:
            topology = walk.current if walk.current is not None else walk.start
        self._topology = topology
        self._kernel_walk = LocalWalk(self.kernel_space_for(topology), self._ledger,
                                      phase=KERNEL, start=topology, restarts=self._restarts)

    def _absorb(self, batch: Batch, scores: list[float | None]) -> list[bool]:
        walk = self._topology_walk if self._kernel_walk is None else self._kernel_walk
        return walk.absorb(batch, scores)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if isinstance(state, dict) and state.get("space") == LEGACY_TOPOLOGY_SPACE:
            state = {**state, "space": self.topology_space.name}
        super().load_state_dict(state)

    def _state(self) -> dict[str, Any]:
        return {
            "reserve": self._reserve,
            "topology_walk": self._topology_walk.state_dict(),
            "topology": encode(self._topology),
            "kernel_walk": None if self._kernel_walk is None else self._kernel_walk.state_dict(),
        }

    def _load_state(self, state: dict[str, Any]) -> None:
        reserve = state["reserve"]
        self._reserve = None if reserve is None else int(reserve)
        self._topology_walk.load_state_dict(state["topology_walk"], self._decode)
        self._topology = decode_optional(state["topology"], self._decode)
        self._kernel_walk = None
        if self._topology is not None:
            self._kernel_walk = LocalWalk(self.kernel_space_for(self._topology), self._ledger,
                                          phase=KERNEL, start=self._topology,
                                          restarts=self._restarts)
            self._kernel_walk.load_state_dict(state["kernel_walk"], self._decode)


@register_strategy(
    BilevelSearch.name, space=MACRO_SPACE, costs=False, kernel_phase=True, was_space=True,
    method="Bilevel-NAS",
    about="Bilevel-NAS: local search over the topology (macro space), then over the "
          "kernel sizes of the best topology",
    description="Bilevel-NAS: topology first (VGG blocks), then the kernels of the best "
                "topology, one shared budget")
def _make_bilevel(space: SpaceLike, *, budget: int, rng: np.random.Generator | int | None,
                  decode: Decode, start: Any | None,
                  kernel_space_for: Callable[[Any], SpaceLike] | None = None,
                  restarts: bool = False, **_: Any) -> BilevelSearch:
    if kernel_space_for is None:
        raise ConfigError("bilevel search needs kernel_space_for (topology -> kernel space)")
    return BilevelSearch(space, kernel_space_for, budget=budget, rng=rng, decode=decode,
                         start=start, restarts=restarts)
