"""The shared checks of every kind of part, for the suite and for plugins (as ``optuna.testing``).

Each kind's checks are one module; a plugin outside the tree imports the check of its
kind and calls it on its registered name::

    from mbnas.testing import check_strategy
    check_strategy("mutation")

| check | module | what it takes |
| --- | --- | --- |
| ``check_block`` | :mod:`mbnas.testing.blocks` | a registered block family |
| ``check_space`` | :mod:`mbnas.testing.spaces` | a registered search space |
| ``check_strategy`` | :mod:`mbnas.testing.strategies` | a registered search strategy |
| ``check_metric`` | :mod:`mbnas.testing.metrics` | a registered metric |
| ``check_cost`` | :mod:`mbnas.testing.costs` | a registered cost figure |
| ``check_scoring`` | :mod:`mbnas.testing.scoring` | a registered scoring method |

The checks assert with ``assert`` and ``pytest.raises`` (pytest is in the ``test`` extra).
The modules are imported when a check is first asked for, so importing this package
imports no torch.
"""

from __future__ import annotations

import importlib
from typing import Any

#: check name -> the module defining it.
CHECKS = {
    "check_block": "mbnas.testing.blocks",
    "check_space": "mbnas.testing.spaces",
    "check_strategy": "mbnas.testing.strategies",
    "check_metric": "mbnas.testing.metrics",
    "check_cost": "mbnas.testing.costs",
    "check_scoring": "mbnas.testing.scoring",
}

__all__ = sorted(CHECKS)


def __getattr__(name: str) -> Any:
    if name not in CHECKS:
        raise AttributeError(f"module 'mbnas.testing' has no attribute {name!r}")
    try:
        module = importlib.import_module(CHECKS[name])
    except ModuleNotFoundError as exc:
        if exc.name != CHECKS[name]:
            raise
        raise AttributeError(f"{name} is not available: {CHECKS[name]} is missing") from None
    return getattr(module, name)


def __dir__() -> list[str]:
    return sorted([*globals(), *CHECKS])
