"""Search strategies: local search, random search and bilevel search (no training here).

A strategy asks for batches of genotypes and is told their scores; the driver trains,
stores results and checkpoints ``state_dict()``. Nothing in this package imports torch.
"""

from __future__ import annotations

from mbnas.search.base import Ledger, SpaceLike, Strategy
from mbnas.search.bilevel import BilevelSearch
from mbnas.search.limits import LimitedSpace, parse_amount
from mbnas.search.local import DEFAULT_STRATEGY, LocalSearch, LocalWalk, full_pass_size
from mbnas.search.pareto import ParetoLocalSearch, pareto_front
from mbnas.search.random_search import RandomSearch
from mbnas.search.records import Batch, Evaluation
from mbnas.search.registry import (
    StrategyDefinition,
    check_method,
    make_strategy,
    method_description,
    method_name,
    register_strategy,
    strategy_definition,
    strategy_names,
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
    "upgrade_settings",
]

# `mbnas.search(...)` is the API function of mbnas.api (see mbnas._callable).
from mbnas._callable import make_callable  # noqa: E402

make_callable(__name__, "search")
