"""Fixtures shared across test folders: a tiny phantom dataset and a tiny training protocol."""

from __future__ import annotations

from pathlib import Path

import pytest

from mbnas.data import PreprocessConfig, load_slices, make_phantom
from mbnas.data.slices import SliceData
from mbnas.engine.config import Protocol, get_protocol

TINY_SIZE = 32


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
