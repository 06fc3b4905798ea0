"""Tiny phantom datasets for the data-layer tests (session-scoped: made once, never edited).

Tests that damage a dataset first take a private copy with ``copy_dataset``.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from mbnas.data.phantom import make_phantom

# Small enough that every test stays well under a second.
TINY_SHAPE = (32, 32, 10)


@pytest.fixture(scope="session")
def spleen_msd(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 4-case CT spleen phantom in MSD v1 layout."""
    return make_phantom(tmp_path_factory.mktemp("phantoms") / "Task09_Spleen", "spleen",
                        n_cases=4, seed=0, shape=TINY_SHAPE)


@pytest.fixture(scope="session")
def prostate_msd(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 4-case, 2-site T2+ADC prostate phantom in MSD v1 layout (4D images)."""
    return make_phantom(tmp_path_factory.mktemp("phantoms") / "Task05_Prostate", "prostate",
                        n_cases=4, seed=0, sites=2, shape=TINY_SHAPE)


@pytest.fixture(scope="session")
def prostate_nnunet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same prostate phantom as ``prostate_msd``, in nnU-Net v2 raw layout."""
    return make_phantom(tmp_path_factory.mktemp("phantoms") / "Dataset005_Prostate",
                        "prostate", n_cases=4, seed=0, sites=2, shape=TINY_SHAPE,
                        fmt="nnunet")


@pytest.fixture
def copy_dataset(tmp_path: Path) -> Callable[[Path], Path]:
    """Return a function that copies a dataset folder into this test's tmp dir."""

    def copy(src: Path) -> Path:
        return Path(shutil.copytree(src, tmp_path / src.name))

    return copy


class Nifti:
    """Read and write NIfTI files in tests (a fixture, so no test imports conftest)."""

    @staticmethod
    def read(path: Path) -> tuple[np.ndarray, np.ndarray]:
        """The stored array and affine of a NIfTI file."""
        img = nib.load(path)
        return np.asanyarray(img.dataobj), img.affine

    @staticmethod
    def write(path: Path, array: np.ndarray, affine: np.ndarray) -> None:
        nib.save(nib.Nifti1Image(array, affine), path)


@pytest.fixture
def nii() -> type[Nifti]:
    return Nifti
