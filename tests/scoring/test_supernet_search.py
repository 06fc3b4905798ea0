"""`mbnas search --scoring supernet` end to end, on a phantom and on the real lung sample,
and a supernet training killed with SIGKILL resuming to the same weights."""

from __future__ import annotations

import json
import math
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from mbnas.cli import main
from mbnas.commands.search.config import SearchConfig
from mbnas.scoring.supernet_train import inherited_score, recalibration_batches
from mbnas.spaces.mbnas import architecture_from_dict
from mbnas.store import ResultStore


def _config(tmp_path: Path, data: Path, cache: Path, **extra) -> Path:
    cfg = {
        "data_dir": str(data), "space": "mbnas", "max_depth": 1, "strategy": "local",
        "budget": 3, "seed": 3, "start": "random", "cache_dir": str(cache), "threads": 1,
        "device": "cpu", "scoring": "supernet", "retrain_top": 2,
        "protocol": {"epochs": 1, "folds": 2, "seeds": [0], "image_size": 32,
                     "base_channels": 4, "batch_size": 16, "samples_per_epoch": 0,
                     "supernet_epochs": 2},
        **extra,
    }
    path = tmp_path / "search.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _log(run: Path) -> list[dict]:
    lines = [json.loads(x) for x in (run / "search_log.jsonl").read_text().splitlines()]
    for e in lines:
        e.pop("seconds")
    return lines


def _checkpoints(run: Path) -> list[Path]:
    return sorted((run / "supernet").glob("*/fold*.pt"))


def _check_supernet_search(run: Path, retrain_top: int, budget: int) -> list[dict]:
    """What every supernet search must show: which score is which, and the best pick."""
    log = _log(run)
    assert len(log) == budget and all(e["score_source"] == "supernet" for e in log)
    distinct = {e["arch_key"]: e["score"] for e in log}
    top = sorted(distinct, key=lambda k: -distinct[k])[:retrain_top]
    retrained = {e["arch_key"] for e in log if "standalone_score" in e}
    assert retrained == set(top)  # the best K by supernet score, and only they
    config = SearchConfig.from_dict(yaml.safe_load((run / "config.yaml").read_text()))
    with ResultStore(run / "store.sqlite", read_only=True) as store:
        runs = store.runs(protocol_key=config.protocol.key)
    assert {r.arch_key for r in runs} == set(top)  # nothing else was trained stand-alone
    assert len(runs) == len(top) * config.protocol.folds * len(config.protocol.seeds)
    best = json.loads((run / "best.json").read_text())
    standalone = {e["arch_key"]: e["standalone_score"] for e in log if "standalone_score" in e}
    assert best["score_source"] == "standalone"
    assert best["score"] == max(standalone.values())
    assert best["arch_key"] == max(standalone, key=lambda k: standalone[k])
    assert best["supernet_score"] == distinct[best["arch_key"]]
    summary = json.loads((run / "supernet.json").read_text())
    assert summary["folds"] == config.protocol.folds and summary["training_seconds"] > 0
    assert summary["scored"] == len(distinct)
    # The progress figure and the reporting card say whose scores these are.
    from mbnas.commands.common.search_runs import progress_label, read_search_run
    from mbnas.commands.report.card import search_trainings

    assert "[supernet scores]" in progress_label(yaml.safe_load((run / "config.yaml").read_text()))
    card = search_trainings(read_search_run(run))
    assert f"{config.protocol.folds} supernet(s) x {summary['epochs']} epochs" in card
    assert f"best {retrain_top} retrained stand-alone" in card
    return log


def test_a_local_supernet_search_on_a_phantom_scores_by_inherited_weights(
        tmp_path: Path, phantom_spleen: Path, phantom_cache: Path) -> None:
    cfg = _config(tmp_path, phantom_spleen, phantom_cache)
    run = tmp_path / "run"
    assert main(["search", "--config", str(cfg), "--out", str(run)]) == 0
    log = _check_supernet_search(run, 2, 3)
    checkpoints = _checkpoints(run)
    assert [p.name for p in checkpoints] == ["fold0.pt", "fold1.pt"]
    # The logged score is the mean over folds of the supernet's inherited-weight Dice.
    from mbnas.commands.common.dataset import training_data
    from mbnas.commands.common.runfolder import RunFolder
    from mbnas.scoring.supernet import SuperNet
    from mbnas.spaces.mbnas import get_space
    from mbnas.training.runs import fold_data

    config = SearchConfig.from_dict(yaml.safe_load((run / "config.yaml").read_text()))
    p = config.protocol
    data = training_data(config.data_dir, config.cache_dir, p.image_size, None,
                         p.normalisation, p.target_spacing)
    folds = RunFolder(run).folds(data, p.folds, config.seed)
    genotype = architecture_from_dict(log[0]["genotype"])
    scores = []
    for fold, path in enumerate(checkpoints):
        state = torch.load(path, weights_only=False)
        assert state["epoch"] == 2
        net = SuperNet(get_space("mbnas", 1), data.in_channels, data.n_classes, 4)
        net.load_state_dict(state["model"])
        train, val = fold_data(data, folds, fold)
        scores.append(inherited_score(net, genotype, recalibration_batches(train, p, "cpu"),
                                      val, p, torch.device("cpu")))
    assert math.isclose(log[0]["score"], sum(scores) / 2, rel_tol=1e-6)


@pytest.mark.parametrize("strategy", ["random"])
def test_a_random_supernet_search_on_the_real_lung_sample(strategy: str, lung_sample: Path,
                                                          tmp_path: Path) -> None:
    tiny = ["--protocol", "quick", "--epochs", "1", "--image-size", "32", "--folds", "2",
            "--seeds", "1", "--device", "cpu", "--threads", "1", "--target-spacing", "10",
            "--foreground-fraction", "0.33"]
    run = tmp_path / "search"
    assert main(["search", str(lung_sample), *tiny, "--cache", str(tmp_path / "cache"),
                 "--space", "macro", "--strategy", strategy, "--budget", "3",
                 "--scoring", "supernet", "--supernet-epochs", "1", "--retrain-top", "1",
                 "--out", str(run)]) == 0
    _check_supernet_search(run, 1, 3)
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["retrain_top"] == 1 and config["protocol"]["supernet_epochs"] == 1


def test_supernet_training_killed_with_sigkill_resumes_to_the_same_weights(
        tmp_path: Path, phantom_spleen: Path, phantom_cache: Path) -> None:
    settings = {"space": "micro", "max_depth": None, "budget": 2, "retrain_top": 1}
    cfg = _config(tmp_path, phantom_spleen, phantom_cache, **settings)
    whole = tmp_path / "whole"
    assert main(["search", "--config", str(cfg), "--out", str(whole)]) == 0
    killed = tmp_path / "killed"
    cmd = [sys.executable, "-m", "mbnas.cli", "search", "--config", str(cfg),
           "--out", str(killed)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None and not _checkpoints(killed):
        time.sleep(0.02)
    assert proc.poll() is None, "the search ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    first = torch.load(_checkpoints(killed)[0], weights_only=False)
    assert first["epoch"] < 2 or len(_checkpoints(killed)) < 2  # killed mid-training
    assert subprocess.run(cmd, capture_output=True).returncode == 0
    for a, b in zip(_checkpoints(whole), _checkpoints(killed), strict=True):
        sa, sb = torch.load(a, weights_only=False), torch.load(b, weights_only=False)
        assert sa["epoch"] == sb["epoch"] == 2
        assert sa["model"].keys() == sb["model"].keys()
        assert all(torch.equal(sa["model"][k], sb["model"][k]) for k in sa["model"])
    assert _log(killed) == _log(whole)
    assert (json.loads((killed / "best.json").read_text())
            == json.loads((whole / "best.json").read_text()))
