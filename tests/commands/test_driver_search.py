"""`mbnas search` end to end: outputs, resume after SIGKILL, refused configs and the lock."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from search_kill import kill_and_resume, search_log, search_to_end, write_config

from mbnas.cli import main
from mbnas.commands.common.runfolder import RunLock
from mbnas.store import ResultStore

BUDGET = 4


def _config(tmp_path: Path, data: Path, cache: Path, **extra) -> Path:
    cfg = {
        "data_dir": str(data), "space": "mbnas", "strategy": "local", "budget": BUDGET,
        "seed": 3, "start": "random", "cache_dir": str(cache),
        # samples_per_epoch 0: an epoch is one pass over the phantom's slices (3 steps),
        # not the 2048 samples of the default protocol.
        "protocol": {"epochs": 1, "folds": 2, "seeds": [0], "image_size": 32,
                     "base_channels": 4, "batch_size": 16, "samples_per_epoch": 0},
        **extra,
    }
    return write_config(tmp_path, cfg)


_log = search_log


@pytest.fixture(scope="module")
def finished_search(tmp_path_factory, phantom_spleen: Path, phantom_cache: Path) -> Path:
    tmp = tmp_path_factory.mktemp("search")
    return search_to_end(_config(tmp, phantom_spleen, phantom_cache), tmp / "run")


def test_search_writes_its_run_folder(finished_search: Path) -> None:
    run = finished_search
    for name in ("config.yaml", "splits.json", "store.sqlite", "search_log.jsonl",
                 "search_state.json", "best.json", "progress.png", "progress.svg"):
        assert (run / name).exists(), name
    log = _log(run)
    assert len(log) == BUDGET
    assert [e["index"] for e in log] == list(range(BUDGET))
    best = json.loads((run / "best.json").read_text())
    scores = [e["score"] for e in log if e["score"] is not None]
    assert best["score"] == max(scores)
    with ResultStore(run / "store.sqlite", read_only=True) as store:
        assert len(store.runs()) == BUDGET * 2  # 2 folds x 1 seed per evaluation
        constant = sum(1 for r in store.runs()
                       if (r.metrics or {}).get("constant_prediction") is not None)
    # the log counts the runs that predicted one class (a search-only report notes them)
    assert sum(e["constant_runs"] for e in log) == constant
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    assert cfg["protocol"]["base_channels"] == 4 and cfg["budget"] == BUDGET


def test_rerun_of_finished_search_trains_nothing(finished_search: Path, tmp_path: Path,
                                                 phantom_spleen: Path, phantom_cache: Path
                                                 ) -> None:
    before = _log(finished_search)
    with ResultStore(finished_search / "store.sqlite", read_only=True) as store:
        stamps = sorted(r.finished_at + r.arch_key for r in store.runs())
    cfg = _config(tmp_path, phantom_spleen, phantom_cache)
    assert main(["search", "--config", str(cfg), "--out", str(finished_search)]) == 0
    assert _log(finished_search) == before
    with ResultStore(finished_search / "store.sqlite", read_only=True) as store:
        assert sorted(r.finished_at + r.arch_key for r in store.runs()) == stamps


def test_changed_config_is_refused_with_the_differences(
        finished_search: Path, tmp_path: Path, phantom_spleen: Path, phantom_cache: Path,
        capsys) -> None:
    cfg = _config(tmp_path, phantom_spleen, phantom_cache, seed=4)
    code = main(["search", "--config", str(cfg), "--out", str(finished_search), "--epochs", "3"])
    err = capsys.readouterr().err
    assert code == 2
    assert "seed: 3 -> 4" in err and "protocol.epochs: 1 -> 3" in err
    assert "Traceback" not in err


def test_finished_search_resumed_with_a_larger_budget_goes_on_as_the_larger_one(
        finished_search: Path, tmp_path: Path, phantom_spleen: Path, phantom_cache: Path,
        capsys) -> None:
    cfg = _config(tmp_path, phantom_spleen, phantom_cache)
    out = tmp_path / "extended"
    small = str(BUDGET // 2)
    assert main(["search", "--config", str(cfg), "--out", str(out), "--budget", small]) == 0
    assert len(_log(out)) == BUDGET // 2
    with ResultStore(out / "store.sqlite", read_only=True) as store:
        stamps = {(r.arch_key, r.fold, r.seed): r.finished_at for r in store.runs()}
    assert main(["search", "--config", str(cfg), "--out", str(out)]) == 0  # budget BUDGET

    def trajectory(run: Path) -> list[dict]:
        # Batch numbers differ: the budget was raised in the middle of a variable's options.
        return [{k: v for k, v in e.items() if k != "batch"} for e in _log(run)]

    assert trajectory(out) == trajectory(finished_search)
    assert yaml.safe_load((out / "config.yaml").read_text())["budget"] == BUDGET
    with ResultStore(out / "store.sqlite", read_only=True) as store:
        assert len(store.runs()) == BUDGET * 2
        assert all(r.finished_at == stamps.get((r.arch_key, r.fold, r.seed), r.finished_at)
                   for r in store.runs())  # nothing trained again
    capsys.readouterr()
    assert main(["search", "--config", str(cfg), "--out", str(out), "--budget", small]) == 2
    err = capsys.readouterr().err
    assert f"budget: {BUDGET} -> {small}" in err and "not shrink" in err
    assert "Traceback" not in err


def test_second_search_on_a_locked_folder_is_refused(finished_search: Path, tmp_path: Path,
                                                     phantom_spleen: Path, phantom_cache: Path,
                                                     capsys) -> None:
    cfg = _config(tmp_path, phantom_spleen, phantom_cache)
    with RunLock(finished_search):  # another driver holds the folder
        code = main(["search", "--config", str(cfg), "--out", str(finished_search)])
    assert code == 2
    assert "another mbnas process" in capsys.readouterr().err


def test_search_killed_with_sigkill_resumes_to_the_same_end(
        finished_search: Path, tmp_path: Path, phantom_spleen: Path, phantom_cache: Path
        ) -> None:
    cfg = _config(tmp_path, phantom_spleen, phantom_cache)
    # Killed mid-way through the search, in the middle of its second evaluation (one of
    # its runs committed); the modes' test below kills at the same point.
    out = kill_and_resume(cfg, tmp_path / "killed", 3)
    assert _log(out) == _log(finished_search)
    with ResultStore(out / "store.sqlite", read_only=True) as store:
        assert len(store.runs()) == BUDGET * 2


def test_a_typo_in_the_config_file_is_refused(tmp_path: Path, phantom_spleen: Path,
                                              phantom_cache: Path, capsys) -> None:
    cfg = _config(tmp_path, phantom_spleen, phantom_cache, budgit=3)
    assert main(["search", "--config", str(cfg), "--out", str(tmp_path / "r")]) == 2
    assert "unknown search settings: budgit" in capsys.readouterr().err
    assert not (tmp_path / "r" / "store.sqlite").exists()


# Settings whose own state (the bilevel phases, the fused seeds, the race's dropped
# candidates) must survive a SIGKILL; the cost limits' test is in test_driver_cost_search.
@pytest.mark.parametrize("flags", [["--space", "macro", "--strategy", "bilevel"],
                                   ["--fuse", "--seeds", "2"],
                                   ["--race"]], ids=["bilevel", "fuse", "race"])
def test_search_modes_killed_with_sigkill_resume_to_the_same_end(
        flags: list[str], tmp_path: Path, phantom_spleen: Path, phantom_cache: Path) -> None:
    cfg = _config(tmp_path, phantom_spleen, phantom_cache, budget=3)
    whole = search_to_end(cfg, tmp_path / "whole", *flags)
    out = kill_and_resume(cfg, tmp_path / "killed", 3, *flags)  # in the second evaluation
    assert _log(out) == _log(whole)
    assert json.loads((out / "best.json").read_text()) == \
        json.loads((whole / "best.json").read_text())
