"""`mbnas search --fidelity`: scores never mix fidelities, resume after SIGKILL, strategies."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from search_kill import kill_and_resume, search_log, search_to_end, write_config

from mbnas.cli import main
from mbnas.commands.search.run import SearchConfig
from mbnas.scoring.fidelity import rung_protocol
from mbnas.store import ResultStore

BUDGET = 5
RUNGS = "0.5,1"


def _config(tmp_path: Path, data: Path, cache: Path, **extra) -> Path:
    cfg = {
        "data_dir": str(data), "space": "mbnas", "strategy": "local", "budget": BUDGET,
        "seed": 3, "start": "random", "cache_dir": str(cache), "threads": 1,
        "fidelity": RUNGS,
        "protocol": {"epochs": 2, "folds": 2, "seeds": [0], "image_size": 32,
                     "base_channels": 4, "batch_size": 16, "samples_per_epoch": 0,
                     "precision": "fp32"},
        **extra,
    }
    return write_config(tmp_path, cfg)


_log = search_log


def _check_fidelities(run: Path) -> dict:
    """Every told score is the mean of full-protocol runs only; dropped options have none."""
    config = SearchConfig.from_dict(yaml.safe_load((run / "config.yaml").read_text()))
    full, low = config.protocol, rung_protocol(config.protocol, config.fidelity[0])
    log = [e for e in _log(run) if "index" in e]
    with ResultStore(run / "store.sqlite", read_only=True) as store:
        assert set(store.protocols()) == {full.key, low.key}
        for e in log:
            runs = store.runs(arch_key=e["arch_key"], protocol_key=full.key)
            if e["score"] is None:
                assert runs == [] and e["fidelity"] == config.fidelity[0]
                assert e["dropped"].startswith("dropped at fidelity 0.5 (1 epochs, 1 run)")
            else:
                assert e["fidelity"] == 1.0 and "dropped" not in e
                assert e["score"] == pytest.approx(np.mean([r.score for r in runs]))
            assert len(store.runs(arch_key=e["arch_key"], protocol_key=low.key)) == 1
        counts = {"0.5 (1 epochs)": len(store.runs(protocol_key=low.key)),
                  "1 (full)": len(store.runs(protocol_key=full.key))}
    best = json.loads((run / "best.json").read_text())
    assert best["trainings_by_fidelity"] == counts
    return counts


@pytest.fixture(scope="module")
def fidelity_search(tmp_path_factory, phantom_spleen: Path, phantom_cache: Path) -> Path:
    tmp = tmp_path_factory.mktemp("fidelity")
    return search_to_end(_config(tmp, phantom_spleen, phantom_cache), tmp / "run")


def test_fidelity_search_tells_full_scores_only(fidelity_search: Path) -> None:
    counts = _check_fidelities(fidelity_search)
    log = _log(fidelity_search)
    assert len(log) == BUDGET
    dropped = [e for e in log if e["score"] is None]
    assert dropped, "this seed's search dropped no option: the test checks nothing"
    # Full trainings: 2 folds x 1 seed for each option that went on, nothing for the others.
    assert counts["1 (full)"] == 2 * (BUDGET - len(dropped))
    assert yaml.safe_load((fidelity_search / "config.yaml").read_text())["fidelity"] == [0.5, 1]


def test_fidelity_search_killed_with_sigkill_resumes_to_the_same_end(
        fidelity_search: Path, tmp_path: Path, phantom_spleen: Path, phantom_cache: Path
        ) -> None:
    cfg = _config(tmp_path, phantom_spleen, phantom_cache)
    # Killed among the low rungs, after the start's full runs: the fidelity state (which
    # option is at which rung) must survive.
    out = kill_and_resume(cfg, tmp_path / "killed", 5)
    assert _log(out) == _log(fidelity_search)
    _check_fidelities(out)


def test_rerun_of_a_fidelity_search_trains_nothing(fidelity_search: Path, tmp_path: Path,
                                                   phantom_spleen: Path, phantom_cache: Path
                                                   ) -> None:
    with ResultStore(fidelity_search / "store.sqlite", read_only=True) as store:
        n = store.count()
    before = _log(fidelity_search)
    cfg = _config(tmp_path, phantom_spleen, phantom_cache)
    assert main(["search", "--config", str(cfg), "--out", str(fidelity_search)]) == 0
    assert _log(fidelity_search) == before
    with ResultStore(fidelity_search / "store.sqlite", read_only=True) as store:
        assert store.count() == n


@pytest.mark.parametrize("extra", [
    {"race": True, "fuse": True},
    {"space": "macro", "strategy": "bilevel", "budget": 4},
    {"objectives": ["dice", "params"], "budget": 4},
], ids=["race-fuse", "bilevel", "pareto"])
def test_fidelity_combines_with_racing_and_other_strategies(
        extra: dict, tmp_path: Path, phantom_spleen: Path, phantom_cache: Path) -> None:
    cfg = _config(tmp_path, phantom_spleen, phantom_cache, **extra)
    assert main(["search", "--config", str(cfg), "--out", str(tmp_path / "run")]) == 0
    _check_fidelities(tmp_path / "run")


def test_bad_fidelity_is_refused_in_one_line(tmp_path: Path, phantom_spleen: Path,
                                             phantom_cache: Path, capsys) -> None:
    cfg = _config(tmp_path, phantom_spleen, phantom_cache)
    code = main(["search", "--config", str(cfg), "--out", str(tmp_path / "run"),
                 "--fidelity", "0.5"])
    err = capsys.readouterr().err
    assert code == 2 and "fidelity" in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()


def test_card_counts_the_trainings_of_each_fidelity(fidelity_search: Path, tmp_path: Path
                                                     ) -> None:
    counts = _check_fidelities(fidelity_search)
    assert main(["report", str(fidelity_search), "--out", str(tmp_path / "report")]) == 0
    card = json.loads((tmp_path / "report" / "card.json").read_text())
    text = next(iter(card["search_trainings"].values()))
    low, full = counts["0.5 (1 epochs)"], counts["1 (full)"]
    assert text.startswith(f"{low + full} trainings: {low} at fidelity 0.5 (1 epochs")
    assert f"; {full} full protocol (2 epochs, 2 folds x 1 seed(s))" in text
