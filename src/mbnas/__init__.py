"""mbnas: Mixed-Block Neural Architecture Search for medical image segmentation.

The Python API (the command line calls the same functions)::

    from mbnas import search, evaluate, report, predict

See :mod:`mbnas.api` for their signatures. They are imported on first use, so that
``import mbnas`` stays cheap (no torch import). The subpackages are named for what they
hold (:mod:`mbnas.strategies`, :mod:`mbnas.reporting`, :mod:`mbnas.inference`), so no
subpackage shares a name with an API function.
"""

from __future__ import annotations

from typing import Any

from mbnas.version import __version__

__all__ = ["__version__", "evaluate", "predict", "report", "search"]

_API = frozenset({"search", "evaluate", "report", "predict"})


def __getattr__(name: str) -> Any:
    if name in _API:
        from mbnas import api

        return getattr(api, name)
    raise AttributeError(f"module 'mbnas' has no attribute {name!r}")
