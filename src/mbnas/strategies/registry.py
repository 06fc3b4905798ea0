"""Strategies registered by name, and the factory the search driver calls.

One list, read by the CLI's ``--strategy`` choices, the search config and the reports.
A strategy is registered once, next to its class (``@register_strategy``), with the
labels reports show; :data:`STRATEGIES` imports the built-in strategies' modules on its
first look-up. A duplicate name is an error and an unknown name lists the valid ones.
Like the space registry (:mod:`mbnas.spaces.registry`), this module does not import torch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from mbnas.errors import ConfigError
from mbnas.registry import Registry
from mbnas.spaces.registry import space_definition
from mbnas.strategies.options import parse_options

if TYPE_CHECKING:
    from mbnas.strategies.base import SpaceLike, Strategy
    from mbnas.strategies.records import Decode


@dataclass(frozen=True)
class StrategyDefinition:
    """A registered search strategy.

    Attributes:
        name: What ``--strategy`` takes and ``config.yaml`` records.
        builder: ``f(space, *, budget, rng, decode, start, batch_size, kernel_space_for,
            figures, costs, restarts) -> Strategy``; arguments a strategy does not use are ignored.
        about: One line for ``--help`` and the docs.
        method: The name reports give its best network when the strategy makes a method
            of its own ("Bilevel-NAS"); empty: the space's name ("MB-NAS").
        description: The reporting card's sentence for such a method.
        space: The one space it searches, or None for any space.
        costs: Whether it takes cost objectives and limits (``--objectives``,
            ``--max-*``); off unless declared, so a strategy that ranks by Dice alone
            refuses them instead of writing a front it did not search for.
        options: Its options dataclass, or None: fields read from the config's
            ``strategy_options:`` and ``--strategy-option KEY=VALUE``
            (:mod:`mbnas.strategies.options`); the builder receives the instance as
            ``options``.
        kernel_phase: Whether, after the space, it searches the kernel sizes of the best
            network (``mbnas.spaces.mbnas.kernel_space``); reports then give both phases' sizes.
        was_space: Whether run folders written before it was a strategy name it as their
            space (``space: NAME``, strategy local); they are read as today's settings.
        one_shot: ``"module:function"`` of an architecture search done by training (torch),
            which the search driver runs before the ask/tell loop and whose decoded
            networks it offers to the strategy (``strategy.offer``); see
            :mod:`mbnas.strategies.dnas`. Empty: a plain ask/tell strategy.
        card: How the reporting card names the search method; empty: "NAME search".
    """

    name: str
    builder: Callable[..., Strategy]
    about: str = ""
    method: str = ""
    description: str = ""
    space: str | None = None
    costs: bool = False
    kernel_phase: bool = False
    was_space: bool = False
    options: type | None = None
    one_shot: str = ""
    card: str = ""


#: The strategy `mbnas search` uses unless told otherwise: the paper's local search.
DEFAULT_STRATEGY = "local"

#: Every search strategy, by name. Built-in: one module each, imported on first look-up.
STRATEGIES: Registry[StrategyDefinition] = Registry(
    "search strategy", "search strategies: ask for genotypes, are told their scores",
    builtins=("mbnas.strategies.local", "mbnas.strategies.random_search",
              "mbnas.strategies.bilevel", "mbnas.strategies.dnas"))


def register_strategy(name: str, **fields: Any
                      ) -> Callable[[Callable[..., Strategy]], Callable[..., Strategy]]:
    """Register a builder under ``name`` in :data:`STRATEGIES`; ``fields`` are those of
    :class:`StrategyDefinition`. A duplicate name is an error."""
    return STRATEGIES.decorator(name, lambda builder: StrategyDefinition(name, builder,
                                                                         **fields))


#: Every registered strategy name, the built-in ones first.
strategy_names = STRATEGIES.names

#: The definition of a strategy by name (``ConfigError`` listing the valid names).
strategy_definition = STRATEGIES.get


def make_strategy(name: str, space: SpaceLike, *, budget: int = 150,
                  rng: np.random.Generator | int | None = None, decode: Decode,
                  start: Any | None = None, batch_size: int | None = None,
                  kernel_space_for: Callable[[Any], SpaceLike] | None = None,
                  figures: Callable[[Any], Mapping[str, float]] | None = None,
                  costs: Sequence[str] = (), restarts: bool = False,
                  options: Mapping[str, Any] | None = None) -> Strategy:
    """Build a search strategy by name.

    Args:
        name: A registered name (:func:`strategy_names`).
        space: the space searched; for "bilevel", the topology space of phase 1.
        budget: the most architectures evaluated (paper: 150).
        rng: numpy generator or seed: the only source of randomness of the search.
        decode: rebuilds a genotype from its ``to_dict()``, e.g. ``Genotype.from_dict``.
        start: genotype to start from (None: a random sample of ``space``).
        batch_size: random search only: genotypes asked per batch (None: its option
            ``batch_size``, 1). Local and bilevel search ignore it: their batch is the
            options of one variable.
        kernel_space_for: bilevel only: topology genotype -> phase-2 (kernel) space.
        figures: genotype -> cost figures, for the cost objectives ``costs``.
        costs: cost objectives besides Dice; local search becomes Pareto local search.
        restarts: local and bilevel search: after a local optimum, start again from a
            random genotype until the budget is spent (the authors' code).
        options: the strategy's own options (``strategy_options:`` of the config), checked
            against its options dataclass.

    Raises:
        ConfigError: unknown name (the message lists the valid ones), cost objectives for
            a strategy that takes none, bad options or bad settings.
        GenotypeError: ``start`` is not in ``space``.
    """
    definition = strategy_definition(name)
    if costs and not definition.costs:
        raise ConfigError(f"cost objectives are not supported with the {name} strategy; "
                          f"use --strategy {', '.join(cost_strategies())}")
    return definition.builder(space, budget=budget, rng=rng, decode=decode, start=start,
                              batch_size=batch_size, kernel_space_for=kernel_space_for,
                              figures=figures, costs=tuple(costs), restarts=restarts,
                              options=strategy_options(name, options))


def strategy_options(name: str, values: Mapping[str, Any] | None) -> Any | None:
    """The options instance of strategy ``name`` from ``values`` (None when it declares
    none and none are given).

    Raises:
        ConfigError: an unknown strategy, key or a value of the wrong type (one line).
    """
    return parse_options(name, strategy_definition(name).options, values)


def cost_strategies() -> tuple[str, ...]:
    """The strategies that take cost objectives and limits."""
    return tuple(n for n in strategy_names() if strategy_definition(n).costs)


def check_method(space: str, strategy: str) -> None:
    """Refuse a strategy on a space it does not search (one line, saying what to pass).

    Raises:
        ConfigError: unknown names, or a strategy bound to another space.
    """
    space_definition(space)
    definition = strategy_definition(strategy)
    if definition.space is not None and space != definition.space:
        raise ConfigError(f"the {strategy} strategy searches the {definition.space} space, "
                          f"not {space}: pass --space {definition.space} --strategy {strategy}")


def upgrade_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    """Search settings as written today; older folders named some strategies as their
    space (``space: bilevel``, strategy local). Other settings are returned unchanged.

    Raises:
        ConfigError: such an old space name with a strategy other than local search.
    """
    out = dict(settings)
    old = out.get("space")
    definition = STRATEGIES.find(old)
    if definition is None or not definition.was_space:
        return out
    strategy = out.get("strategy")
    default = default_strategy()
    if strategy not in (None, default, old):
        raise ConfigError(f"space {old!r} is now --space {definition.space} --strategy "
                          f"{old}; it takes no --strategy {strategy}")
    out["space"], out["strategy"] = definition.space, old
    return out


def default_strategy() -> str:
    """The strategy `mbnas search` uses unless told otherwise: :data:`DEFAULT_STRATEGY`,
    named here (not the first registered), checked to be registered."""
    return strategy_definition(DEFAULT_STRATEGY).name


def method_name(space: str, strategy: str) -> str:
    """The name reports give a search's best network: the strategy's method
    ("Bilevel-NAS"), else the space's (the paper's Table 1 names, e.g. "MB-NAS")."""
    definition = STRATEGIES.find(strategy)
    if definition is not None and definition.method:
        return definition.method
    try:
        return space_definition(space).display_name
    except ConfigError:  # a folder of a space this version no longer has
        return space


def method_description(space: str, strategy: str) -> str:
    """The reporting card's sentence on what a search searched."""
    definition = STRATEGIES.find(strategy)
    if definition is not None and definition.description:
        return definition.description
    try:
        return space_definition(space).card_text
    except ConfigError:
        return space
