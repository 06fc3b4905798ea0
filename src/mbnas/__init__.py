"""mbnas: Mixed-Block Neural Architecture Search for medical image segmentation.

The Python API (the command line calls the same functions)::

    from mbnas import search, evaluate, report, predict

See :mod:`mbnas.api` for their signatures. They are imported on first use, so that
``import mbnas`` stays cheap (no torch import). ``search``, ``report`` and ``predict`` are
also the subpackages of those names, made callable (:mod:`mbnas._callable`).
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["__version__", "evaluate", "predict", "report", "search"]


def __getattr__(name: str) -> Any:
    if name in ("search", "report", "predict"):  # callable subpackages
        import importlib

        return importlib.import_module(f"mbnas.{name}")
    if name == "evaluate":
        from mbnas.api import evaluate

        return evaluate
    raise AttributeError(f"module 'mbnas' has no attribute {name!r}")
