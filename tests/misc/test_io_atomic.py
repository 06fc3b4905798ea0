"""Atomic writes: whole files or none, with the mode a plain open() would give."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from mbnas.io import atomic_write, atomic_write_json


def test_atomic_write_keeps_old_file_when_writing_fails(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    atomic_write_json(path, {"v": 1})

    def broken(f) -> None:
        f.write(b"partial")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(path, broken)
    assert path.read_text().strip().startswith("{") and '"v": 1' in path.read_text()
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_atomic_write_uses_the_umask_mode(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        atomic_write_json(tmp_path / "b.json", [1])
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "b.json").stat().st_mode) == 0o644
