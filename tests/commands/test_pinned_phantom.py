"""A fixed phantom search and evaluation give the scores and metrics pinned before the layout.

``pinned_phantom.json`` holds what these exact commands wrote on commit e670a4d, before
issue 30 moved the code into its rooms (commands/, training/, scoring/, spaces/, nn/,
costs/): every search-log score and spread, and every case's metrics and run score of
the evaluation, as JSON floats (``repr``, so exact). A move that changes any number a
user stores (a layer built in another order, a score rule, a seed drawn elsewhere) fails
here. The protocol is small but the U-Net learns (its runs are not constant), so the
metrics depend on the trained weights.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from mbnas.cli import main

PINNED = json.loads((Path(__file__).with_name("pinned_phantom.json")).read_text())
PROTOCOL = {"epochs": 2, "folds": 2, "seeds": [0], "image_size": 32, "base_channels": 4,
            "batch_size": 4, "lr": 0.01, "precision": "fp32", "samples_per_epoch": 0}


def test_phantom_search_and_evaluation_match_the_scores_pinned_before_the_move(
        tmp_path: Path) -> None:
    data = tmp_path / "Task09_Spleen"
    assert main(["phantom", "--task", "spleen", "--cases", "4", "--out", str(data),
                 "--shape", "40", "40", "6", "--seed", "0"]) == 0
    config = tmp_path / "search.yaml"
    config.write_text(yaml.safe_dump({
        "data_dir": str(data), "space": "mbnas", "strategy": "local", "budget": 3, "seed": 5,
        "start": "unet", "cache_dir": str(tmp_path / "cache"), "protocol": PROTOCOL}))
    assert main(["search", "--config", str(config), "--out", str(tmp_path / "run"),
                 "--threads", "1"]) == 0
    assert main(["evaluate", str(tmp_path / "run"), "--baselines", "none", "--seeds", "1",
                 "--folds", "2", "--device", "cpu", "--threads", "1",
                 "--out", str(tmp_path / "ev")]) == 0

    log = [json.loads(line) for line in
           (tmp_path / "run" / "search_log.jsonl").read_text().splitlines()]
    assert [{k: e[k] for k in PINNED["search_log"][0]} for e in log] == PINNED["search_log"]
    evaluation = json.loads((tmp_path / "ev" / "evaluation.json").read_text())
    pinned = PINNED["evaluation"]
    assert {name: d["run_score_mean"] for name, d in evaluation["details"].items()} == \
        pinned["run_score_mean"]
    cases = [{k: c[k] for k in pinned["cases"][0]}
             for m in evaluation["models"] for c in m["cases"]]
    assert cases == pinned["cases"]
    # Learnt, not constant: the pin holds numbers that depend on the trained weights.
    assert log[0]["constant_runs"] == 0 and 0 < log[0]["score"] < 1
