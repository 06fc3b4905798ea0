"""Fixtures shared across test folders: a tiny phantom dataset, a tiny training protocol,
and plugins: toy registry entries registered from a temporary module."""

from __future__ import annotations

import importlib
import sys
import uuid
from pathlib import Path
from types import ModuleType

import pytest

from mbnas.data import PreprocessConfig, load_slices, make_phantom
from mbnas.data.slices import SliceData
from mbnas.training.protocol import Protocol, get_protocol

TINY_SIZE = 32
EXTENDING = Path(__file__).resolve().parents[1] / "docs" / "extending.md"


def recipe(heading: str) -> str:
    """The first Python code block of the section ``## heading`` of docs/extending.md."""
    text = EXTENDING.read_text(encoding="utf-8")
    assert f"\n## {heading}\n" in text, f"docs/extending.md has no section {heading!r}"
    section = text.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]
    assert "```python\n" in section, f"section {heading!r} has no Python code block"
    return section.split("```python\n", 1)[1].split("\n```", 1)[0] + "\n"


class Plugins:
    """Imports source text as a new module (a plugin, as a user would write one) and,
    at the end of the test, removes the entries it registered and the module."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._added: list[tuple[object, str]] = []
        self._modules: list[str] = []

    def load(self, source: str, *registries: object) -> ModuleType:
        """Import ``source``; the new names in ``registries`` are unregistered later."""
        before = [set(r.names()) for r in registries]  # type: ignore[attr-defined]
        name = f"toy_plugin_{uuid.uuid4().hex[:12]}"
        (self.folder / f"{name}.py").write_text(source, encoding="utf-8")
        self._modules.append(name)
        if str(self.folder) not in sys.path:
            sys.path.insert(0, str(self.folder))
        importlib.invalidate_caches()
        module = importlib.import_module(name)
        for registry, old in zip(registries, before, strict=True):
            self._added += [(registry, n) for n in registry.names() if n not in old]
        return module

    def recipe(self, heading: str, *registries: object) -> ModuleType:
        """Load the recipe of section ``heading`` of docs/extending.md as a plugin."""
        return self.load(recipe(heading), *registries)

    def close(self) -> None:
        for registry, name in reversed(self._added):
            registry.unregister(name)  # type: ignore[attr-defined]
        for name in self._modules:
            sys.modules.pop(name, None)
        if str(self.folder) in sys.path:
            sys.path.remove(str(self.folder))


@pytest.fixture
def plugin(tmp_path: Path):
    """A :class:`Plugins`: register toy entries from a temporary module for one test."""
    folder = tmp_path / "plugins"
    folder.mkdir()
    plugins = Plugins(folder)
    try:
        yield plugins
    finally:
        plugins.close()


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


@pytest.fixture(scope="session")
def lung_sample() -> Path:
    """The real lung CT sample (`mbnas sample lung-ct`) that `make test` prepares once.

    Found through ``$MBNAS_LUNG_SAMPLE`` (the Makefile sets it). Skipped where it is not
    set up, except under CI (``CI=true``), where a missing sample fails the test.
    """
    import os

    path = Path(os.environ.get("MBNAS_LUNG_SAMPLE") or ".cache/samples/lung-ct")
    if not (path / "provenance.json").is_file():
        why = (f"the lung CT sample is not at {path}; `make test` prepares it "
               "(mbnas sample lung-ct --out DIR, then MBNAS_LUNG_SAMPLE=DIR)")
        if os.environ.get("CI") == "true":
            pytest.fail(why)
        pytest.skip(why)
    return path.resolve()


@pytest.fixture(scope="session")
def lung_archives(lung_sample: Path) -> Path:
    """The package cache's ``downloads`` folder holding the sample's two archives."""
    import os

    from mbnas.data.sample import PYCERR

    cache = Path(os.environ.get("MBNAS_SAMPLE_CACHE") or ".cache/mbnas")
    if not (cache / "downloads" / PYCERR.archive).is_file():
        why = f"the sample's archives are not in {cache}/downloads (MBNAS_SAMPLE_CACHE)"
        if os.environ.get("CI") == "true":
            pytest.fail(why)
        pytest.skip(why)
    return (cache / "downloads").resolve()
