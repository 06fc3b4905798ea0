"""Fixtures shared across test folders: a tiny phantom dataset and a tiny training protocol."""

from __future__ import annotations

from pathlib import Path

import pytest

from mbnas.data import PreprocessConfig, load_slices, make_phantom
from mbnas.data.slices import SliceData
from mbnas.engine.config import Protocol, get_protocol

TINY_SIZE = 32


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``cuda`` run where a CUDA device is present and are skipped elsewhere
    (``pytest -m cuda`` runs only them: ``benchmarks/device_check.sh``)."""
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="no CUDA device on this machine")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def phantom_spleen(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six CT spleen phantom cases in MSD layout (made once per session; never edited)."""
    return make_phantom(tmp_path_factory.mktemp("shared") / "Task09_Spleen", "spleen",
                        n_cases=6, seed=0, shape=(48, 48, 12))


@pytest.fixture(scope="session")
def phantom_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="session")
def phantom_slices(phantom_spleen: Path, phantom_cache: Path) -> SliceData:
    """The phantom's slices at 32x32."""
    return load_slices(phantom_spleen, phantom_cache, PreprocessConfig(size=TINY_SIZE))


@pytest.fixture(scope="session")
def tiny_protocol() -> Protocol:
    """Training small enough for a test: 2 folds x 1 seed, 2 epochs, 4 base channels."""
    return get_protocol("quick", epochs=2, folds=2, seeds=[0], image_size=TINY_SIZE,
                        base_channels=4, batch_size=16)


@pytest.fixture(scope="session")
def browser():
    """Headless Chromium driven by Playwright (Debian's chromium, never a download).

    Skipped where chromium is missing, except under CI (``CI=true``), whose .ci/run
    installs it: there a missing browser fails the test instead of hiding it.
    """
    import os
    import shutil

    path = shutil.which("chromium")
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is not installed; .ci/run installs Debian's chromium")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        instance = pw.chromium.launch(executable_path=path, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync"])
        yield instance
        instance.close()
