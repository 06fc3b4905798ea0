"""Dataset folders kept safe: the phantom never deletes what it did not write (issue 11)."""

from __future__ import annotations

import stat

import pytest

from mbnas.data.phantom import make_phantom
from mbnas.errors import ConfigError

SHAPE = (16, 16, 4)


def test_phantom_refuses_to_replace_a_folder_holding_other_files(tmp_path) -> None:
    data = make_phantom(tmp_path / "D", "spleen", 2, seed=0, shape=SHAPE)
    (data / "runs" / "r").mkdir(parents=True)
    (data / "runs" / "r" / "store.sqlite").write_bytes(b"results")
    with pytest.raises(ConfigError, match="did not write.*runs"):
        make_phantom(data, "spleen", 2, seed=0, shape=SHAPE)
    assert (data / "runs" / "r" / "store.sqlite").read_bytes() == b"results"
    (data / "labelsTr" / "notes.txt").write_text("mine")
    (data / "runs" / "r" / "store.sqlite").unlink()
    (data / "runs" / "r").rmdir()
    (data / "runs").rmdir()
    with pytest.raises(ConfigError, match="labelsTr/notes.txt"):
        make_phantom(data, "spleen", 2, seed=0, shape=SHAPE)
    (data / "labelsTr" / "notes.txt").unlink()
    make_phantom(data, "spleen", 2, seed=1, shape=SHAPE)  # its own files only: replaced


def test_phantom_folder_is_readable_by_others(tmp_path) -> None:
    data = make_phantom(tmp_path / "D", "spleen", 1, seed=0, shape=SHAPE)
    mode = stat.S_IMODE(data.stat().st_mode)
    assert mode & 0o055 == 0o755 & 0o055 & ~_umask()
    assert mode != 0o700


def _umask() -> int:
    import os

    mask = os.umask(0)
    os.umask(mask)
    return mask
