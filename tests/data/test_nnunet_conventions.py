"""nnU-Net dataset IDs and names under $nnUNet_raw, and nnU-Net's splits_final.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mbnas.cli import main
from mbnas.data import make_phantom
from mbnas.data.folds import read_splits
from mbnas.data.nnunet import adopt_splits, resolve_dataset
from mbnas.errors import ConfigError


@pytest.fixture(scope="module")
def nnunet_raw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    raw = tmp_path_factory.mktemp("nnUNet_raw")
    make_phantom(raw / "Dataset009_Spleen", "spleen", n_cases=3, seed=0, shape=(16, 16, 4),
                 fmt="nnunet")
    return raw


@pytest.mark.parametrize("spec", ["9", "009", "Dataset009_Spleen"])
def test_an_id_or_name_is_found_under_nnunet_raw(nnunet_raw, monkeypatch, spec, capsys):
    monkeypatch.setenv("nnUNet_raw", str(nnunet_raw))
    assert resolve_dataset(spec) == nnunet_raw / "Dataset009_Spleen"
    assert main(["check", spec]) == 0
    assert "3 case(s), nnunet format" in capsys.readouterr().out


def test_an_unknown_id_or_no_nnunet_raw_is_refused(nnunet_raw, monkeypatch, capsys):
    monkeypatch.setenv("nnUNet_raw", str(nnunet_raw))
    with pytest.raises(ConfigError, match="Dataset004_"):
        resolve_dataset("4")
    monkeypatch.delenv("nnUNet_raw")
    assert main(["check", "9"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "nnUNet_raw" in err


def test_an_existing_path_wins_over_an_id(tmp_path, monkeypatch, nnunet_raw):
    monkeypatch.setenv("nnUNet_raw", str(nnunet_raw))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "9").mkdir()
    assert resolve_dataset("9") == Path("9")


def test_nnunet_splits_become_the_run_folds(tmp_path):
    source = tmp_path / "splits_final.json"
    source.write_text(json.dumps([{"train": ["a", "b"], "val": ["c"]},
                                  {"train": ["b", "c"], "val": ["a"]}]))
    run_splits = tmp_path / "run" / "splits.json"
    assert adopt_splits(source, run_splits) == 2
    assert [f.val for f in read_splits(run_splits)] == [("c",), ("a",)]
    assert adopt_splits(source, run_splits) == 2  # a resume with the same file
    source.write_text(json.dumps([{"train": ["a", "c"], "val": ["b"]}]))
    before = run_splits.read_text()
    with pytest.raises(ConfigError, match="other folds"):
        adopt_splits(source, run_splits)
    assert run_splits.read_text() == before


def test_search_takes_a_dataset_id_and_nnunet_folds(nnunet_raw, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("nnUNet_raw", str(nnunet_raw))
    splits = tmp_path / "splits_final.json"
    cases = ["spleen_1", "spleen_2", "spleen_3"]
    splits.write_text(json.dumps([{"train": cases[1:], "val": cases[:1]},
                                  {"train": cases[:2], "val": cases[2:]}]))
    out = tmp_path / "run"
    # Three folds asked for, two given: refused once the folds are read, before training.
    code = main(["search", "9", "--protocol", "quick", "--folds", "3", "--budget", "1",
                 "--cache", str(tmp_path / "cache"), "--splits", str(splits),
                 "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and "holds 2 folds but 3 were asked for" in err
    assert [f.val for f in read_splits(out / "splits.json")] == [("spleen_1",), ("spleen_3",)]
    assert not (out / "config.yaml").exists()  # refused before the run folder is claimed
    # The ID resolves to the dataset's folder under $nnUNet_raw.
    assert main(["search", "9", "--protocol", "quick", "--folds", "2", "--dry-run",
                 "--out", str(tmp_path / "dry")]) == 0
    assert str(nnunet_raw / "Dataset009_Spleen") in capsys.readouterr().out
