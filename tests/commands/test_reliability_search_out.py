"""`search --out` may not be the dataset folder or lie among its scans (issue 34, item 19)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mbnas.cli import main

TINY = ["--protocol", "quick", "--epochs", "1", "--image-size", "32", "--threads", "1",
        "--device", "cpu", "--folds", "2", "--budget", "1", "--start", "unet"]


def _snapshot(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize(("where", "says"), [
    ("", "is the dataset folder"), ("imagesTr", "lies in the dataset's imagesTr/ folder"),
    ("labelsTr/run", "lies in the dataset's labelsTr/ folder")])
def test_search_out_in_the_dataset_is_refused_and_writes_nothing(
        phantom_spleen: Path, tmp_path: Path, where: str, says: str,
        capsys) -> None:  # noqa: ANN001
    data = Path(shutil.copytree(phantom_spleen, tmp_path / "data"))
    before = _snapshot(data)
    code = main(["search", str(data), *TINY, "--cache", str(tmp_path / "cache"),
                 "--out", str(data / where)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and says in err, err
    assert _snapshot(data) == before and not (data / "labelsTr" / "run").exists()
