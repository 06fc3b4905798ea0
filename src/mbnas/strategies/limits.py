"""Hard cost limits: architectures over a limit are never proposed, so never trained.

The cost figures (:data:`mbnas.costs.registry.COSTS`: parameters, MACs, memory, latency
and any a plugin registers) are computed outside this package
(``mbnas.commands.search.cost``, with torch) and reach the search as a callable
``figures(genotype) -> {name: value}``. :class:`LimitedSpace` wraps a search space so
that every strategy respects the limits without knowing about them:

* ``with_value`` answers None for a neighbour over a limit, exactly as for a neighbour
  the space itself forbids: local search treats it as an invalid neighbour;
* ``sample`` draws again until the sample is within the limits, so random search (and a
  random start) samples only within them.

Every architecture turned away is recorded once, with the figures and the reason, in
``skipped``; the record round-trips through JSON (``state_dict``) like a strategy's.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from mbnas.costs.registry import COSTS, limit_figures
from mbnas.errors import ConfigError

_SUFFIXES = {"": 1.0, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12,
             "KI": 2.0 ** 10, "MI": 2.0 ** 20, "GI": 2.0 ** 30, "TI": 2.0 ** 40}
_AMOUNT = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)\s*([KMGT]I?)?B?\s*$", re.I)

Figures = Callable[[Any], Mapping[str, float]]


def parse_amount(text: str | float | int, what: str = "limit") -> float:
    """A number with an optional suffix: ``50M`` = 5e7, ``2G`` = 2e9, ``2GiB`` = 2**31.

    K, M, G, T are decimal (1e3 ...); Ki, Mi, Gi, Ti binary (1024 ...); a trailing B
    (bytes) is allowed and ignored.

    Raises:
        ConfigError: not a positive number with a known suffix.
    """
    if isinstance(text, bool):
        raise ConfigError(f"{what} must be a number such as 50M or 2G, not {text!r}")
    if isinstance(text, (int, float)):
        value = float(text)
    else:
        match = _AMOUNT.match(str(text))
        if match is None:
            raise ConfigError(f"{what} must be a number with an optional suffix K, M, G, T "
                              f"(or Ki, Mi, Gi), such as 50M or 2G; got {text!r}")
        value = float(match.group(1)) * _SUFFIXES[(match.group(2) or "").upper()]
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{what} must be a positive number, got {text!r}")
    return value


def format_figure(name: str, value: float) -> str:
    """``macs`` 6.2e7 -> ``62.0M MAC``; ``latency`` 3.14 -> ``3.14 ms`` (the figure's own
    format, :meth:`mbnas.costs.registry.CostFigure.format`)."""
    return COSTS.get(name).format(value)


def check_limits(limits: Mapping[str, float]) -> dict[str, float]:
    """The limits as numbers; a figure that cannot be limited is refused in one line."""
    known = limit_figures()
    unknown = [n for n in limits if n not in known]
    if unknown:
        raise ConfigError(f"unknown cost limit(s) {', '.join(unknown)}; limits: "
                          f"{', '.join(known)}")
    return {n: float(v) for n, v in limits.items()}


def over(name: str, value: float, cap: float) -> bool:
    """Whether ``value`` of figure ``name`` is beyond the limit ``cap`` (its direction)."""
    return value < cap if COSTS.get(name).direction == "max" else value > cap


def violations(figures: Mapping[str, float], limits: Mapping[str, float]) -> list[str]:
    """One phrase per limit exceeded, e.g. ``"macs 62.0M MAC > max 50.0M MAC"``."""
    return [f"{name} {format_figure(name, figures[name])} > max {format_figure(name, cap)}"
            for name, cap in limits.items() if over(name, figures[name], cap)]


class LimitedSpace:
    """A search space restricted to the architectures within hard cost limits.

    Args:
        space: the space wrapped (``mbnas.spaces.mbnas`` interface; its name is kept, so a
            strategy's checkpoint names the same space).
        figures: genotype -> cost figures (at least those limited); should be cached.
        limits: figure name -> largest allowed value.
        max_draws: consecutive samples over a limit after which ``sample`` gives up.
        clock: returns the number of evaluations so far; a skip record stores it so the
            log can place the skip between evaluations.
    """

    def __init__(self, space: Any, figures: Figures, limits: Mapping[str, float], *,
                 max_draws: int = 10_000, clock: Callable[[], int] | None = None) -> None:
        self.space: Any = space
        self.figures = figures
        self.limits = check_limits(limits)
        self.max_draws = max_draws
        self.clock = clock
        self.skipped: list[dict[str, Any]] = []
        self._skipped_keys: set[str] = set()

    # The space interface ---------------------------------------------------------------

    @property
    def name(self) -> str:
        return str(self.space.name)

    def variables(self) -> tuple[Any, ...]:
        return tuple(self.space.variables())

    def value(self, genotype: Any, variable: Any) -> Any:
        return self.space.value(genotype, variable)

    def contains(self, genotype: Any) -> bool:
        return bool(self.space.contains(genotype))

    def size(self) -> int:
        """Size of the unrestricted space (an upper bound: counting within the limits
        would mean measuring every architecture)."""
        return int(self.space.size())

    def with_value(self, genotype: Any, variable: Any, value: Any) -> Any | None:
        changed = self.space.with_value(genotype, variable, value)
        if changed is None or not self.allows(changed):
            return None
        return changed

    def sample(self, rng: np.random.Generator) -> Any:
        for _ in range(self.max_draws):
            genotype = self.space.sample(rng)
            if self.allows(genotype):
                return genotype
        raise ConfigError(f"no architecture of the {self.name} space within the limits in "
                          f"{self.max_draws} random draws; raise the limits")

    # Limits ----------------------------------------------------------------------------

    def reasons(self, genotype: Any) -> list[str]:
        """Why ``genotype`` is over the limits (empty: it is within them)."""
        return violations(self.figures(genotype), self.limits)

    def allows(self, genotype: Any) -> bool:
        """Within the limits; an architecture turned away is recorded in ``skipped``."""
        reasons = self.reasons(genotype)
        if reasons and genotype.key not in self._skipped_keys:
            self._skipped_keys.add(genotype.key)
            figures = self.figures(genotype)
            self.skipped.append({
                "key": genotype.key, "genotype": genotype.to_dict(),
                "skipped": "; ".join(reasons),
                "figures": {n: float(figures[n]) for n in self.limits},
                "after": None if self.clock is None else int(self.clock()),
            })
        return not reasons

    def state_dict(self) -> dict[str, Any]:
        return {"limits": dict(self.limits), "skipped": [dict(s) for s in self.skipped]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if check_limits(state.get("limits", {})) != self.limits:
            raise ConfigError(f"search checkpoint has limits {state.get('limits')}, not "
                              f"{self.limits}: resume with the same settings")
        self.skipped = [dict(s) for s in state.get("skipped", [])]
        self._skipped_keys = {s["key"] for s in self.skipped}
