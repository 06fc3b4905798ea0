"""`mbnas search --scoring supernet` end to end: local, Pareto and bilevel searches on a
phantom, random search on real lung patients; evaluate, report and predict after a
supernet search (phantom and lung); a search killed with SIGKILL during supernet training
and again during scoring resumes to the same weights, search_log.jsonl and best.json.

One search per data set is shared by the tests of this module (``scope="module"``)."""

from __future__ import annotations

import json
import math
import signal
import subprocess
import sys
import time
from pathlib import Path

import nibabel as nib
import pytest
import torch
import yaml
from lung_subset import lung_subset

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


@pytest.fixture(scope="module")
def phantom_run(tmp_path_factory: pytest.TempPathFactory, phantom_spleen: Path,
                phantom_cache: Path) -> Path:
    """A local supernet search on the phantom: budget 3, the best 2 retrained."""
    tmp = tmp_path_factory.mktemp("supernet_phantom")
    run = tmp / "run"
    assert main(["search", "--config", str(_config(tmp, phantom_spleen, phantom_cache)),
                 "--out", str(run)]) == 0
    return run


def test_a_local_supernet_search_on_a_phantom_scores_by_inherited_weights(
        phantom_run: Path) -> None:
    run = phantom_run
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


def _evaluate_report_predict(run: Path, tmp: Path, scan: Path) -> dict:
    """evaluate (the search's best.json), report and predict after a supernet search;
    returns the report's card."""
    evaluation, report, pred = tmp / "evaluation", tmp / "report", tmp / "pred"
    assert main(["evaluate", str(run), "--baselines", "none", "--seeds", "1", "--folds", "2",
                 "--epochs", "1", "--device", "cpu", "--threads", "1",
                 "--out", str(evaluation)]) == 0
    best = json.loads((run / "best.json").read_text())
    model = json.loads((run / "model" / "model.json").read_text())
    # The network evaluated and exported is best.json's: the best by stand-alone score.
    assert architecture_from_dict(model["architecture"]).key == best["arch_key"]
    assert model["search"]["search_score"] == best["score"]
    assert main(["report", "--evaluation", str(evaluation), "--out", str(report)]) == 0
    card = json.loads((report / "card.json").read_text())
    (trainings,) = card["search_trainings"].values()
    assert "scores of the search by a weight-sharing supernet" in trainings
    assert "best.json: best stand-alone score" in trainings
    assert "weight-sharing supernet" in (report / "report.html").read_text()
    assert main(["predict", "--model", str(run / "model"), "--input", str(scan),
                 "--output", str(pred), "--threads", "1"]) == 0
    labels = nib.load(pred / scan.name)
    assert labels.shape == nib.load(scan).shape
    assert set(map(int, labels.get_fdata().ravel())) <= {0, 1}
    return card


def test_evaluate_report_and_predict_after_a_phantom_supernet_search(
        phantom_run: Path, tmp_path: Path) -> None:
    scan = sorted((Path(_data_dir(phantom_run)) / "imagesTr").glob("*.nii.gz"))[0]
    _evaluate_report_predict(phantom_run, tmp_path, scan)


def _data_dir(run: Path) -> str:
    return yaml.safe_load((run / "config.yaml").read_text())["data_dir"]


@pytest.mark.parametrize(("strategy", "extra"), [
    ("pareto", {"objectives": ["dice", "params"]}),
    ("bilevel", {"space": "macro", "max_depth": None, "strategy": "bilevel", "start": "unet"}),
])
def test_pareto_and_bilevel_searches_score_by_the_supernet(
        strategy: str, extra: dict, tmp_path: Path, phantom_spleen: Path,
        phantom_cache: Path) -> None:
    settings = {"budget": 2, "retrain_top": 1, **extra}
    cfg = _config(tmp_path, phantom_spleen, phantom_cache, **settings)
    cfg.write_text(cfg.read_text().replace("supernet_epochs: 2", "supernet_epochs: 1"))
    run = tmp_path / "run"
    assert main(["search", "--config", str(cfg), "--out", str(run)]) == 0
    log = _check_supernet_search(run, 1, 2)
    if strategy == "pareto":
        assert all(e["costs"]["params"] > 0 for e in log)
        front = json.loads((run / "front.json").read_text())
        assert front["objectives"] == ["dice", "params"] and front["members"]
    else:
        kernels = {n["kernel"] for e in log for n in e["genotype"]["nodes"]}
        assert kernels - {3}  # the kernel phase scored a larger kernel with the supernet


def test_a_random_supernet_search_on_the_real_lung_sample_then_evaluate_report_predict(
        lung_sample: Path, tmp_path: Path) -> None:
    """Four real patients: a random supernet search (budget 3, the best retrained), then
    evaluate, report and predict (one test: one search, whichever worker runs it)."""
    data = lung_subset(lung_sample, tmp_path / "lung")
    run = tmp_path / "search"
    # No --foreground-fraction: after one epoch of it the nets predict tumour everywhere,
    # and evaluate's surface metrics of such a mask on the original grid take seconds.
    tiny = ["--protocol", "quick", "--epochs", "1", "--image-size", "32", "--folds", "2",
            "--seeds", "1", "--device", "cpu", "--threads", "1", "--target-spacing", "10"]
    assert main(["search", str(data), *tiny, "--cache", str(tmp_path / "cache"),
                 "--space", "macro", "--strategy", "random", "--budget", "3",
                 "--scoring", "supernet", "--supernet-epochs", "1", "--retrain-top", "1",
                 "--out", str(run)]) == 0
    _check_supernet_search(run, 1, 3)
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["strategy"] == "random" and config["scoring"] == "supernet"
    assert config["retrain_top"] == 1 and config["protocol"]["supernet_epochs"] == 1
    scan = sorted((data / "imagesTr").glob("*.nii.gz"))[-1]
    _evaluate_report_predict(run, tmp_path, scan)


def _wait(proc: subprocess.Popen, done, what: str) -> None:
    """Poll until ``done()``, then SIGKILL ``proc``; fail if it ended first."""
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None and not done():
        time.sleep(0.02)
    assert proc.poll() is None, f"the search ended before it could be killed {what}"
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def test_a_supernet_search_killed_in_training_and_in_scoring_resumes_to_the_same_results(
        phantom_run: Path, tmp_path: Path, phantom_spleen: Path, phantom_cache: Path) -> None:
    cfg = _config(tmp_path, phantom_spleen, phantom_cache)
    killed = tmp_path / "killed"
    cmd = [sys.executable, "-m", "mbnas.cli", "search", "--config", str(cfg),
           "--out", str(killed)]
    # 1: during supernet training, once the first epoch's checkpoint is written.
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait(proc, lambda: bool(_checkpoints(killed)), "in supernet training")
    first = torch.load(_checkpoints(killed)[0], weights_only=False)
    assert first["epoch"] < 2 or len(_checkpoints(killed)) < 2  # killed mid-training
    assert not (killed / "search_log.jsonl").exists()  # nothing scored yet
    # 2: resumed, then killed during scoring: the supernets trained, networks scored and
    # being retrained stand-alone, supernet.json (written when scoring ends) not there.
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait(proc, (killed / "search_log.jsonl").exists, "in scoring")
    assert not (killed / "supernet.json").exists()
    assert [torch.load(p, weights_only=False)["epoch"] for p in _checkpoints(killed)] == [2, 2]
    # 3: resumed to the end (in this process).
    assert main(["search", "--config", str(cfg), "--out", str(killed)]) == 0
    for a, b in zip(_checkpoints(phantom_run), _checkpoints(killed), strict=True):
        sa, sb = torch.load(a, weights_only=False), torch.load(b, weights_only=False)
        assert sa["epoch"] == sb["epoch"] == 2
        assert sa["model"].keys() == sb["model"].keys()
        assert all(torch.equal(sa["model"][k], sb["model"][k]) for k in sa["model"])
    assert _log(killed) == _log(phantom_run)
    assert (json.loads((killed / "best.json").read_text())
            == json.loads((phantom_run / "best.json").read_text()))
