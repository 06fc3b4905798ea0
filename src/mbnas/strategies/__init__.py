"""Search strategies: local search, random search and bilevel search (no training here).

A strategy asks for batches of genotypes and is told their scores; the driver trains,
stores results and checkpoints ``state_dict()``. Nothing in this package imports torch.
"""

from __future__ import annotations

from mbnas.strategies.base import Ledger, SpaceLike, Strategy
from mbnas.strategies.bilevel import BilevelSearch
from mbnas.strategies.limits import LimitedSpace, parse_amount
from mbnas.strategies.local import DEFAULT_STRATEGY, LocalSearch, LocalWalk, full_pass_size
from mbnas.strategies.pareto import ParetoLocalSearch, pareto_front
from mbnas.strategies.random_search import RandomSearch
from mbnas.strategies.records import Batch, Evaluation
from mbnas.strategies.registry import (
    STRATEGIES,
    StrategyDefinition,
    check_method,
    make_strategy,
    method_description,
    method_name,
    register_strategy,
    strategy_definition,
    strategy_names,
    strategy_options,
    upgrade_settings,
)

__all__ = [
    "DEFAULT_STRATEGY",
    "Batch",
    "BilevelSearch",
    "Evaluation",
    "Ledger",
    "LimitedSpace",
    "LocalSearch",
    "LocalWalk",
    "ParetoLocalSearch",
    "STRATEGIES",
    "RandomSearch",
    "SpaceLike",
    "Strategy",
    "StrategyDefinition",
    "check_method",
    "full_pass_size",
    "make_strategy",
    "method_description",
    "method_name",
    "parse_amount",
    "pareto_front",
    "register_strategy",
    "strategy_definition",
    "strategy_names",
    "strategy_options",
    "upgrade_settings",
]

