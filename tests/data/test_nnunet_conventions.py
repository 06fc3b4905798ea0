"""nnU-Net dataset IDs and names under $nnUNet_raw, and nnU-Net's splits_final.json."""

from __future__ import annotations

import json
import re
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
    assert not out.exists()  # refused before anything is written
    # The ID resolves to the dataset's folder under $nnUNet_raw.
    assert main(["search", "9", "--protocol", "quick", "--folds", "2", "--dry-run",
                 "--out", str(tmp_path / "dry")]) == 0
    assert str(nnunet_raw / "Dataset009_Spleen") in capsys.readouterr().out


@pytest.fixture(scope="module")
def sites_raw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An nnU-Net raw folder with a 2-site dataset (sites in dataset.json)."""
    raw = tmp_path_factory.mktemp("nnUNet_raw_sites")
    make_phantom(raw / "Dataset042_Prostate", "prostate", n_cases=4, seed=0, sites=2,
                 shape=(16, 16, 4), fmt="nnunet")
    return raw


def _case_ids(folder: Path) -> list[str]:
    from mbnas.data.formats import read_dataset

    return [c.case_id for c in read_dataset(folder).cases]


def test_every_option_that_reads_the_dataset_takes_an_id(sites_raw, monkeypatch, tmp_path,
                                                          capsys):
    # The dataset is resolved before the split, the sites and the splits read it.
    monkeypatch.setenv("nnUNet_raw", str(sites_raw))
    ids = _case_ids(sites_raw / "Dataset042_Prostate")
    sites = tmp_path / "sites.csv"
    sites.write_text("case,site\n" + "".join(f"{c},s{i % 2}\n" for i, c in enumerate(ids)))
    splits = tmp_path / "splits.json"
    splits.write_text(json.dumps([{"train": ids[2:], "val": ids[:2]},
                                  {"train": ids[:2], "val": ids[2:]}]))
    for extra in (["--folds", "site"], ["--folds", "2", "--group-by", "site"],
                  ["--folds", "site", "--sites", str(sites)],
                  ["--folds", "2", "--splits", str(splits)]):
        out = tmp_path / "dry"
        assert main(["search", "42", "--protocol", "quick", *extra, "--dry-run",
                     "--out", str(out)]) == 0, (extra, capsys.readouterr().err)
        assert "Dataset042_Prostate" in capsys.readouterr().out
        assert not out.exists()
    # The paper preset is picked by the dataset's name, not by the ID's.
    assert main(["search", "42", "--folds", "2", "--dry-run", "--out", str(tmp_path / "d")]) == 0
    assert "protocol paper -> paper-prostate" in capsys.readouterr().out


def _splits_file(path: Path, folds: list[tuple[list[str], list[str]]]) -> Path:
    path.write_text(json.dumps([{"train": t, "val": v} for t, v in folds]))
    return path


def test_a_refused_splits_file_writes_nothing(nnunet_raw, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("nnUNet_raw", str(nnunet_raw))
    a, b, c = _case_ids(nnunet_raw / "Dataset009_Spleen")
    good = _splits_file(tmp_path / "good.json", [([b, c], [a]), ([a], [b, c])])
    bad = {  # what each refused file says (the fold it names)
        "three folds": ([([b, c], [a]), ([a, c], [b]), ([a, b], [c])], "holds 3 folds"),
        "no training": ([([], [a, b, c]), ([a, b, c], [])], "fold 0 has no training"),
        "no validation": ([([b, c], [a]), ([a, b, c], [])], "fold 1 has no validation"),
        "unknown case": ([([b, c], [a]), ([a, "x_9"], [b, c])], "fold 1 names x_9"),
        "train and val": ([([a, b, c], [a]), ([a], [b, c])], "fold 0 has case.*in both"),
        "twice": ([([b, c], [a]), ([b, c], [a])], "validated in folds 0, 1"),
        "never": ([([b, c], [a]), ([a, c], [b])], f"{c} are never validated"),
    }
    out = tmp_path / "run"
    for what, (folds, message) in bad.items():
        code = main(["search", "9", "--protocol", "quick", "--folds", "2", "--budget", "1",
                     "--splits", str(_splits_file(tmp_path / "bad.json", folds)),
                     "--out", str(out)])
        err = capsys.readouterr().err
        assert code == 2 and re.search(message, err) and len(err.splitlines()) == 1, what
        assert not out.exists(), what
    # The folder is not locked by a refused file: the right one is taken, without a write
    # under --dry-run.
    assert main(["search", "9", "--protocol", "quick", "--folds", "2", "--splits", str(good),
                 "--dry-run", "--out", str(out)]) == 0
    assert not out.exists()


def test_estimate_and_dry_run_write_nothing(nnunet_raw, monkeypatch, tmp_path, capsys):
    # Every option that writes into the run folder: --splits, --sites, --repeats.
    monkeypatch.setenv("nnUNet_raw", str(nnunet_raw))
    ids = _case_ids(nnunet_raw / "Dataset009_Spleen")
    splits = _splits_file(tmp_path / "s.json", [(ids[1:], ids[:1]), (ids[:1], ids[1:])])
    sites = tmp_path / "sites.csv"
    sites.write_text("case,site\n" + "".join(f"{c},s{i % 2}\n" for i, c in enumerate(ids)))
    tiny = ["--protocol", "quick", "--epochs", "1", "--image-size", "16", "--budget", "1",
            "--threads", "1", "--start", "unet", "--cache", str(tmp_path / "cache")]
    for option in (["--folds", "2", "--splits", str(splits)],
                   ["--folds", "site", "--sites", str(sites)],
                   ["--folds", "2", "--repeats", "2"]):
        for mode in ("--estimate", "--dry-run"):
            out = tmp_path / "run"
            assert main(["search", "9", *tiny, *option, mode, "--out", str(out)]) == 0, \
                (option, mode, capsys.readouterr().err)
            assert not out.exists(), (option, mode)
    capsys.readouterr()
