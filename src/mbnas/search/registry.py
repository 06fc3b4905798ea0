"""Strategies registered by name, and the factory the search driver calls."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from mbnas.errors import ConfigError

if TYPE_CHECKING:
    from mbnas.search.base import SpaceLike, Strategy
    from mbnas.search.records import Decode

# Strategies a user picks with --strategy; "bilevel" is picked by the bilevel search space.
SEARCH_STRATEGIES = ("local", "random")

_BUILDERS: dict[str, Callable[..., Strategy]] = {}


def register_strategy(name: str) -> Callable[[Callable[..., Strategy]], Callable[..., Strategy]]:
    """Register a builder ``f(space, *, budget, rng, decode, start, batch_size,
    kernel_space_for) -> Strategy`` under ``name``. A duplicate name is an error."""

    def decorator(builder: Callable[..., Strategy]) -> Callable[..., Strategy]:
        if name in _BUILDERS:
            raise ValueError(f"search strategy {name!r} is already registered")
        _BUILDERS[name] = builder
        return builder

    return decorator


def strategy_names() -> tuple[str, ...]:
    """Every registered strategy name, sorted."""
    return tuple(sorted(_BUILDERS))


def make_strategy(name: str, space: SpaceLike, *, budget: int = 150,
                  rng: np.random.Generator | int | None = None, decode: Decode,
                  start: Any | None = None, batch_size: int = 1,
                  kernel_space_for: Callable[[Any], SpaceLike] | None = None) -> Strategy:
    """Build a search strategy by name.

    Args:
        name: "local", "random" or "bilevel".
        space: the space searched; for "bilevel", the topology space of phase 1.
        budget: the most architectures evaluated (paper: 150).
        rng: numpy generator or seed: the only source of randomness of the search.
        decode: rebuilds a genotype from its ``to_dict()``, e.g. ``Genotype.from_dict``.
        start: genotype to start from (None: a random sample of ``space``).
        batch_size: random search only: genotypes asked per batch. Local and bilevel
            search ignore it: their batch is the options of one variable.
        kernel_space_for: bilevel only: topology genotype -> phase-2 (kernel) space.

    Raises:
        ConfigError: unknown name (the message lists the valid ones) or bad settings.
        GenotypeError: ``start`` is not in ``space``.
    """
    # Importing the package registers the built-in strategies.
    import mbnas.search  # noqa: F401

    builder = _BUILDERS.get(name)
    if builder is None:
        raise ConfigError(f"unknown search strategy {name!r}; valid names: "
                          f"{', '.join(strategy_names())}")
    return builder(space, budget=budget, rng=rng, decode=decode, start=start,
                   batch_size=batch_size, kernel_space_for=kernel_space_for)
