"""`mbnas search --space mbnas-3d` end to end on a 3D phantom: local and random search, the
plan in config.yaml, SIGKILL resume, 2D/3D folders kept apart (the real lung sample, from
search to nnU-Net export: test_pipeline_3d_lung.py).

Sized for the suite: a 4-case 32 x 32 x 8 phantom made for this module, 16 x 16 x 8
patches, 1 epoch of 2 steps, one preprocessing cache shared by the module's searches."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from search_kill import kill_and_resume
from search_kill import search_log as _log

from mbnas.cli import main
from mbnas.data import make_phantom

BUDGET = 2
PATCH = [16, 16, 8]


def config_3d(tmp_path: Path, data: Path, cache: Path, **extra) -> Path:
    cfg = {
        "data_dir": str(data), "space": "mbnas-3d", "strategy": "local", "budget": BUDGET,
        "seed": 1, "start": "random", "cache_dir": str(cache), "threads": 1,
        "device": "cpu",
        "protocol": {"epochs": 1, "folds": 2, "seeds": [0], "base_channels": 4,
                     "batch_size": 2, "precision": "fp32",
                     "volume": {"patch_size": PATCH, "iterations_per_epoch": 2}},
        **extra,
    }
    path = tmp_path / f"search-{len(list(tmp_path.glob('search*.yaml')))}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.fixture(scope="module")
def phantom_3d(tmp_path_factory) -> tuple[Path, Path]:
    """A small 3D phantom (4 cases, up to 32 x 32 x 8 voxels) and the module's cache."""
    tmp = tmp_path_factory.mktemp("phantom3d")
    data = make_phantom(tmp / "Task09_Spleen", "spleen", n_cases=4, seed=0, shape=(32, 32, 8))
    return data, tmp / "cache"


@pytest.fixture(scope="module")
def search_3d(tmp_path_factory, phantom_3d: tuple[Path, Path]) -> Path:
    tmp = tmp_path_factory.mktemp("search3d")
    cfg = config_3d(tmp, *phantom_3d)
    assert main(["search", "--config", str(cfg), "--out", str(tmp / "run")]) == 0
    return tmp / "run"


def test_local_search_in_3d_records_the_plan(search_3d: Path) -> None:
    config = yaml.safe_load((search_3d / "config.yaml").read_text())
    vol = config["protocol"]["volume"]
    assert config["protocol"]["dice"] == "case"
    assert vol["patch_size"] == PATCH and len(vol["strides"]) == 3
    assert len(vol["spacing"]) == 3
    log = _log(search_3d)
    assert len(log) == BUDGET and all(0 <= e["score"] <= 1 for e in log)
    best = json.loads((search_3d / "best.json").read_text())
    assert best["score"] == max(e["score"] for e in log)


def test_random_search_in_3d(tmp_path: Path, phantom_3d: tuple[Path, Path]) -> None:
    cfg = config_3d(tmp_path, *phantom_3d, strategy="random", budget=2)
    assert main(["search", "--config", str(cfg), "--out", str(tmp_path / "run")]) == 0
    assert len(_log(tmp_path / "run")) == 2


def test_a_3d_folder_never_resumes_as_2d(search_3d: Path, tmp_path: Path,
                                         phantom_3d: tuple[Path, Path], capsys) -> None:
    data = phantom_3d[0]
    before = (search_3d / "config.yaml").read_text()
    code = main(["search", str(data), "--space", "mbnas", "--protocol", "quick",
                 "--out", str(search_3d)])
    assert code == 2
    assert (search_3d / "config.yaml").read_text() == before
    capsys.readouterr()
    code = main(["search", str(data), "--space", "mbnas", "--protocol", "quick",
                 "--patch-size", "32,32,8", "--out", str(tmp_path / "x")])
    assert code == 2
    assert "is 2D, but the protocol has 3D settings" in capsys.readouterr().err


def test_patch_not_divisible_by_the_strides_is_refused(tmp_path: Path, phantom_spleen: Path,
                                                       capsys) -> None:
    code = main(["search", str(phantom_spleen), "--space", "mbnas-3d", "--protocol", "quick",
                 "--patch-size", "30,32,8", "--out", str(tmp_path / "r")])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "use --patch-size 24,32,8" in err[0]
    assert not (tmp_path / "r" / "config.yaml").exists()


def test_3d_search_killed_with_sigkill_resumes_to_the_same_log(
        search_3d: Path, tmp_path: Path, phantom_3d: tuple[Path, Path]) -> None:
    cfg = config_3d(tmp_path, *phantom_3d)
    out = kill_and_resume(cfg, tmp_path / "killed", 3)  # mid-way through the 2nd evaluation
    assert _log(out) == _log(search_3d)
