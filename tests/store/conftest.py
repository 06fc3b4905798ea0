"""Make the shared record helpers available to the store tests."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

HELPERS_PATH = Path(__file__).with_name("store_helpers.py")


def _load_helpers() -> ModuleType:
    spec = importlib.util.spec_from_file_location("mbnas_store_test_helpers", HELPERS_PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def helpers() -> ModuleType:
    """The ``store_helpers`` module: ``make_record(i, **overrides)``, ``key_text``."""
    return _load_helpers()
