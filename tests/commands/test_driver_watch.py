"""Watching a run: plain output and a log file under a batch scheduler, the Optuna mirror
and optuna-dashboard serving it."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import yaml

from mbnas.store import ResultStore
from mbnas.store.optuna_mirror import FILENAME, mirror_search_log

BUDGET = 3


@pytest.fixture(scope="module")
def logged_search(tmp_path_factory, phantom_spleen: Path, phantom_cache: Path) -> Path:
    """A search run as under sbatch: stdout and stderr to a file, no terminal."""
    tmp = tmp_path_factory.mktemp("watch")
    cfg = {"data_dir": str(phantom_spleen), "budget": BUDGET, "seed": 1, "start": "unet",
           "cache_dir": str(phantom_cache),
           "protocol": {"epochs": 2, "folds": 2, "seeds": [0], "image_size": 32,
                        "base_channels": 4, "batch_size": 16}}
    (tmp / "search.yaml").write_text(yaml.safe_dump(cfg))
    script = Path(sys.executable).with_name("mbnas")
    with open(tmp / "log.txt", "w") as out:
        code = subprocess.run([str(script), "search", "--config", str(tmp / "search.yaml"),
                               "--protocol", "quick", "--out", str(tmp / "run")],
                              stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                              timeout=600).returncode
    assert code == 0, (tmp / "log.txt").read_text()
    return tmp / "run"


def _log_entries(run: Path) -> list[dict]:
    return [json.loads(x) for x in (run / "search_log.jsonl").read_text().splitlines()]


def test_output_without_a_terminal_is_plain_lines(logged_search: Path) -> None:
    text = (logged_search.parent / "log.txt").read_text()
    assert "\x1b[" not in text  # no live display's escape codes in a batch log
    evaluation_lines = [x for x in text.splitlines() if " evaluation " in x]
    assert len(evaluation_lines) == BUDGET
    assert f"{BUDGET}/{BUDGET}" in evaluation_lines[-1]
    assert "finished search" in text


def test_search_log_file_is_timestamped_and_complete(logged_search: Path) -> None:
    lines = (logged_search / "search.log").read_text().splitlines()
    assert all(line[:4].isdigit() and line[10] == "T" for line in lines)
    evaluations = [x for x in lines if "evaluation " in x]
    assert len(evaluations) == BUDGET
    # each evaluation of a batch its own number (a batch of probes once printed "3/3" twice)
    numbers = [int(x.split("evaluation ", 1)[1].split("/", 1)[0]) for x in evaluations]
    assert numbers == list(range(1, BUDGET + 1))
    with ResultStore(logged_search / "store.sqlite", read_only=True) as store:
        n_runs = len(store.runs())
    assert sum(" finished: score " in x for x in lines) == n_runs
    assert "best score" in lines[-1]


def _optuna_trials(path: Path) -> list:
    import optuna

    study = optuna.load_study(study_name="mbnas", storage=f"sqlite:///{path}")
    return study.get_trials()


def test_optuna_mirror_matches_the_store(logged_search: Path) -> None:
    trials = _optuna_trials(logged_search / FILENAME)
    entries = _log_entries(logged_search)
    assert len(trials) == len(entries) == BUDGET
    with ResultStore(logged_search / "store.sqlite", read_only=True) as store:
        for trial, entry in zip(trials, entries):
            runs = store.runs(arch_key=trial.user_attrs["arch_key"])
            assert trial.value == pytest.approx(np.mean([r.score for r in runs]))
            nodes = entry["genotype"]["nodes"]
            assert trial.params["b1"] == nodes[0]["block"]
            assert trial.params["c10"] == nodes[9]["kernel"]
            assert trial.user_attrs["accepted"] == entry["accepted"]


def test_optuna_mirror_is_rebuilt_when_it_disagrees(logged_search: Path, tmp_path: Path
                                                    ) -> None:
    entries = _log_entries(logged_search)
    mirror_search_log(tmp_path, entries[:1])
    mirror_search_log(tmp_path, entries)  # appended
    assert [t.value for t in _optuna_trials(tmp_path / FILENAME)] == \
        [e["score"] for e in entries]
    changed = [dict(e) for e in entries]
    changed[0]["score"] = None  # e.g. a failed evaluation after a retry
    mirror_search_log(tmp_path, changed)  # not a prefix any more: rebuilt
    trials = _optuna_trials(tmp_path / FILENAME)
    assert trials[0].state.name == "FAIL" and trials[0].user_attrs["status"] == "failed"
    assert len(trials) == len(entries)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


@pytest.fixture(scope="module")
def dashboard(logged_search: Path):
    """optuna-dashboard serving the run's mirror on a loopback port; yields its base URL."""
    port = _free_port()
    script = Path(sys.executable).with_name("optuna-dashboard")
    proc = subprocess.Popen([str(script), f"sqlite:///{logged_search / FILENAME}",
                             "--host", "127.0.0.1", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                _get(f"{base}/api/meta")
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.5)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _expected_scores(run: Path) -> dict[str, float]:
    with ResultStore(run / "store.sqlite", read_only=True) as store:
        keys = {r.arch_key for r in store.runs()}
        return {k: float(np.mean([r.score for r in store.runs(arch_key=k)])) for k in keys}


def test_optuna_dashboard_api_serves_the_stores_scores(logged_search: Path, dashboard: str
                                                        ) -> None:
    studies = _get(f"{dashboard}/api/studies")["study_summaries"]
    assert [s["study_name"] for s in studies] == ["mbnas"]
    detail = _get(f"{dashboard}/api/studies/{studies[0]['study_id']}")
    served = {_attr(t, "arch_key"): t["values"][0] for t in detail["trials"]}
    expected = _expected_scores(logged_search)
    assert served.keys() == expected.keys()
    for key, value in served.items():
        assert value == pytest.approx(expected[key])


def test_optuna_dashboard_page_renders_the_trials(logged_search: Path, dashboard: str,
                                                  browser) -> None:
    study_id = _get(f"{dashboard}/api/studies")["study_summaries"][0]["study_id"]
    tab = browser.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda e: errors.append(str(e)))
    tab.goto(f"{dashboard}/dashboard/studies/{study_id}/trials", wait_until="networkidle")
    tab.get_by_text(f"{BUDGET} Trials").wait_for(timeout=30_000)
    text = tab.inner_text("body")
    tab.close()
    assert errors == []
    for n in range(BUDGET):
        assert f"Trial {n}" in text
    first = _log_entries(logged_search)[0]
    assert first["arch_key"] in text  # the first trial's attributes are shown
    assert f"b1 {first['genotype']['nodes'][0]['block']}" in text


def _attr(trial: dict, name: str) -> str:
    return next(a["value"] for a in trial["user_attrs"] if a["key"] == name)
