"""Subpackages that are also the API function of the same name.

``mbnas.search``, ``mbnas.report`` and ``mbnas.predict`` are subpackages (strategies,
report rendering, inference) and, for ``from mbnas import search, report, predict``, the
API functions of :mod:`mbnas.api`. A package attribute cannot be both a module and a
function (importing the subpackage rebinds the name), so these subpackage modules are made
callable: calling one calls the API function, imported on first call, so importing
``mbnas.search`` still imports no torch.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any


class _CallableModule(types.ModuleType):
    _api_name: str

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return getattr(importlib.import_module("mbnas.api"), self._api_name)(*args, **kwargs)


def make_callable(module_name: str, api_name: str) -> None:
    """Make the module ``module_name`` callable as ``mbnas.api.<api_name>``."""
    module = sys.modules[module_name]
    module.__class__ = type(f"{api_name}_module", (_CallableModule,), {"_api_name": api_name})
