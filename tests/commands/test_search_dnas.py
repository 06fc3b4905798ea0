"""`mbnas search --strategy dnas` end to end: the DNAS phase, the decoded networks trained
stand-alone, evaluate and report (the card says "differentiable"), resume after SIGKILL,
options and the refusals; on real patients, repeats evaluated and reported (the stability
section)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from lung_subset import lung_subset

from mbnas.cli import main
from mbnas.spaces.mbnas import get_space
from mbnas.spaces.mbnas.genotype import Genotype

TOP_K = 2
# micro: the U-Net topology, blocks and kernels searched; its supernet is small enough
# for a test (the mbnas space's holds every cell type at every level).
FLAGS = ["--strategy", "dnas", "--space", "micro", "--retrain-top", str(TOP_K),
         "--strategy-option", "epochs=3",
         "--strategy-option", "entropy_weight=0.01"]


def _config(tmp: Path, data: Path, cache: Path) -> Path:
    cfg = tmp / "search.yaml"
    cfg.write_text(yaml.safe_dump({
        "data_dir": str(data), "seed": 3, "cache_dir": str(cache), "threads": 1,
        "device": "cpu",
        "protocol": {"epochs": 1, "folds": 2, "seeds": [0], "image_size": 32,
                     "base_channels": 4, "batch_size": 16, "samples_per_epoch": 0}}))
    return cfg


@pytest.fixture(scope="module")
def dnas_run(tmp_path_factory: pytest.TempPathFactory, phantom_spleen: Path,
             phantom_cache: Path) -> Path:
    tmp = tmp_path_factory.mktemp("dnas")
    out = tmp / "run"
    assert main(["search", "--config", str(_config(tmp, phantom_spleen, phantom_cache)),
                 "--out", str(out), *FLAGS]) == 0
    return out


def _lines(run: Path) -> list[dict]:
    return [json.loads(x) for x in (run / "search_log.jsonl").read_text().splitlines()]


def test_the_decoded_networks_are_trained_stand_alone_and_the_best_is_best_json(
        dnas_run: Path) -> None:
    decoded = json.loads((dnas_run / "dnas" / "decoded.json").read_text())
    space = get_space("micro")
    candidates = [Genotype.from_dict(c["genotype"]) for c in decoded["candidates"]]
    assert len(candidates) == TOP_K and all(space.contains(g) for g in candidates)
    assert candidates[0].key == decoded["argmax"]["arch_key"]  # the masked argmax first
    assert decoded["epochs"] == 3 and len(decoded["history"]) == 3
    assert decoded["history"][0]["warmup"] and decoded["history"][0]["arch_loss"] is None
    assert decoded["history"][-1]["arch_loss"] is not None
    assert decoded["history"][-1]["tau"] == pytest.approx(0.1)
    # The architecture parameters moved away from their uniform start.
    probs = [p for ps in decoded["probabilities"].values() for p in ps]
    assert max(probs) > min(probs)
    lines = _lines(dnas_run)
    assert [e["key"] for e in lines] == [g.key for g in candidates]
    assert all(e["runs"] == 2 for e in lines)  # folds x seeds of the search protocol
    best = json.loads((dnas_run / "best.json").read_text())
    scores = {e["key"]: e["score"] for e in lines}
    assert best["score"] == max(scores.values()) and scores[best["arch_key"]] == best["score"]
    config = yaml.safe_load((dnas_run / "config.yaml").read_text())
    assert config["strategy"] == "dnas"
    assert config["strategy_options"] == {"epochs": 3, "entropy_weight": 0.01}
    assert config["retrain_top"] == TOP_K


def test_evaluate_and_report_say_differentiable(dnas_run: Path, tmp_path: Path) -> None:
    evaluation, report = tmp_path / "evaluation", tmp_path / "report"
    assert main(["evaluate", str(dnas_run), "--baselines", "none", "--seeds", "1",
                 "--folds", "2", "--epochs", "1", "--device", "cpu", "--threads", "1",
                 "--out", str(evaluation)]) == 0
    assert main(["report", "--evaluation", str(evaluation), "--out", str(report)]) == 0
    card = json.loads((report / "card.json").read_text())
    (strategy,) = card["strategy"].values()
    assert strategy.startswith("dnas: differentiable NAS") and "3 supernet epochs" in strategy


def test_a_dnas_search_killed_with_sigkill_resumes_to_the_same_networks(
        dnas_run: Path, tmp_path: Path, phantom_spleen: Path, phantom_cache: Path) -> None:
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "mbnas.cli", "search", "--config",
           str(_config(tmp_path, phantom_spleen, phantom_cache)), "--out", str(out), *FLAGS]
    proc = subprocess.Popen(cmd, env={**os.environ, "PYTHONUNBUFFERED": "1"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checkpoint = out / "dnas" / "checkpoint.pt"
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and proc.poll() is None and not checkpoint.exists():
        time.sleep(0.05)
    assert proc.poll() is None, "the search ended before it could be killed"
    proc.send_signal(signal.SIGKILL)  # during the second epoch, after the first's checkpoint
    proc.wait()
    assert not (out / "dnas" / "decoded.json").exists()
    assert main(cmd[3:]) == 0  # resumed in this process: one interpreter start less
    assert "DNAS resumed after epoch" in (out / "search.log").read_text()
    whole = json.loads((dnas_run / "dnas" / "decoded.json").read_text())
    resumed = json.loads((out / "dnas" / "decoded.json").read_text())
    assert resumed["probabilities"] == whole["probabilities"]  # the same parameters
    assert resumed["candidates"] == whole["candidates"]
    assert [(e["key"], e["score"]) for e in _lines(out)] == \
        [(e["key"], e["score"]) for e in _lines(dnas_run)]


def test_bad_options_are_one_line_and_nothing_is_written(
        tmp_path: Path, phantom_spleen: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "run"
    for flags, message in (
            (["--strategy-option", "speed=3"], "unknown option 'speed' of the dnas strategy"),
            (["--strategy-option", "arch_lr=fast"], "arch_lr must be float"),
            (["--strategy-option", "cost=latency"], "cost must be one of params"),
            (["--strategy-option", "beam"], "takes KEY=VALUE"),
            (["--scoring", "supernet"], "drop --scoring supernet"),
            (["--scoring", "train", "--objectives", "dice,macs"], "dnas searches Dice")):
        code = main(["search", str(phantom_spleen), "--out", str(out), "--strategy", "dnas",
                     "--protocol", "quick", *flags])
        err = capsys.readouterr().err
        assert code == 2 and message in err and "Traceback" not in err, err
    assert main(["search", str(phantom_spleen), "--out", str(out), "--protocol", "quick",
                 "--strategy-option", "beam=3"]) == 2
    assert "the local strategy takes no options" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.slow
def test_dnas_repeats_on_the_real_lung_sample_evaluate_and_report_stability(
        lung_sample: Path, tmp_path: Path) -> None:
    """Real patients (four of the sample's six) at the tiniest setting: two DNAS searches
    (--repeats) over the macro space, their folder evaluated and reported; the card says
    "differentiable" and the stability section compares their decoded networks variable
    by variable."""
    data = lung_subset(lung_sample, tmp_path / "lung")
    # No --foreground-fraction: after one epoch of it the nets predict tumour everywhere,
    # and evaluate's surface metrics of such a mask on the original grid take seconds.
    tiny = ["--protocol", "quick", "--epochs", "1", "--image-size", "32", "--folds", "2",
            "--seeds", "1", "--device", "cpu", "--threads", "1",
            "--target-spacing", "10", "--cache", str(tmp_path / "cache")]
    run = tmp_path / "search"
    assert main(["search", str(data), *tiny, "--strategy", "dnas", "--space", "macro",
                 "--retrain-top", "1", "--supernet-epochs", "2", "--repeats", "2",
                 "--out", str(run)]) == 0
    for k in range(2):
        decoded = json.loads((run / f"repeat{k}" / "dnas" / "decoded.json").read_text())
        best = json.loads((run / f"repeat{k}" / "best.json").read_text())
        assert decoded["epochs"] == 2 and best["arch_key"] == decoded["argmax"]["arch_key"]
        assert get_space("macro").contains(Genotype.from_dict(best["genotype"]))
    evaluation, report = tmp_path / "evaluation", tmp_path / "report"
    assert main(["evaluate", str(run), "--baselines", "none", "--seeds", "1", "--folds", "2",
                 "--epochs", "1", "--device", "cpu", "--threads", "1",
                 "--out", str(evaluation)]) == 0
    assert main(["report", "--evaluation", str(evaluation), "--out", str(report)]) == 0
    card = json.loads((report / "card.json").read_text())
    assert len(card["strategy"]) == 2 and all(
        v.startswith("dnas: differentiable NAS") and "2 supernet epochs" in v
        for v in card["strategy"].values())
    (group,) = json.loads((report / "stability.json").read_text()).values()
    assert group["repeats"] == 2 and set(group["agreement"]) == {f"node {i}"
                                                                 for i in range(1, 11)}
    assert "Agreement per variable" in (report / "report.html").read_text()
