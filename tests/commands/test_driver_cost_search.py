"""Cost-aware `mbnas search`: limits before training, Pareto search, resume, Dice alone."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
import yaml
from search_kill import kill_and_resume, search_log, write_config

from mbnas.cli import main
from mbnas.commands.search.cost import CostOracle
from mbnas.commands.search.run import SearchConfig, run_search
from mbnas.data import load_slices
from mbnas.spaces.mbnas import architecture_from_dict, get_space
from mbnas.training.runs import InProcessExecutor, RunSpec

BUDGET = 3
SEED = 3
# samples_per_epoch 0: an epoch is one pass over the phantom's slices (3 steps), not the
# 2048 samples of the default protocol.
PROTOCOL = {"epochs": 1, "folds": 2, "seeds": [0], "image_size": 32, "base_channels": 4,
            "batch_size": 16, "precision": "fp32", "samples_per_epoch": 0}
PARETO = ["--objectives", "dice,macs"]


def _config(tmp_path: Path, data: Path, cache: Path, **extra) -> Path:
    cfg = {"data_dir": str(data), "space": "mbnas", "strategy": "local", "budget": BUDGET,
           "seed": SEED, "start": "random", "cache_dir": str(cache), "protocol": PROTOCOL,
           **extra}
    return write_config(tmp_path, cfg, f"search{len(list(tmp_path.glob('search*.yaml')))}.yaml")


_lines = search_log


def _start_macs(data: Path, cache: Path) -> float:
    """MACs of the random start the search draws first (same space, same seed)."""
    start = get_space("mbnas", 4).sample(np.random.default_rng(SEED))
    slices = load_slices(data, cache, _preprocess())
    oracle = CostOracle(slices.in_channels, slices.n_classes, 4, 32)
    return oracle.figures(start, ("macs",))["macs"]


def _limit(data: Path, cache: Path) -> int:
    """A MACs limit just above the start's: some of its neighbours are over it."""
    return round(_start_macs(data, cache) * 1.05)


def _preprocess():
    from mbnas.data import PreprocessConfig

    return PreprocessConfig(size=32)


class CountingExecutor(InProcessExecutor):
    """The real in-process executor, counting the architectures it is sent."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[dict] = []

    def run(self, specs: Sequence[RunSpec], ctx, hooks=None):
        self.sent += [s.architecture for s in specs]
        return super().run(specs, ctx, hooks)


def test_objectives_dice_is_todays_search_bit_for_bit(tmp_path: Path, phantom_spleen: Path,
                                                      phantom_cache: Path) -> None:
    plain = _config(tmp_path, phantom_spleen, phantom_cache, budget=2)
    flagged = _config(tmp_path, phantom_spleen, phantom_cache, budget=2)
    assert main(["search", "--config", str(plain), "--out", str(tmp_path / "a")]) == 0
    assert main(["search", "--config", str(flagged), "--out", str(tmp_path / "b"),
                 "--objectives", "dice"]) == 0
    assert _lines(tmp_path / "a") == _lines(tmp_path / "b")
    for name in ("search_state.json", "config.yaml"):
        assert (tmp_path / "a" / name).read_text() == (tmp_path / "b" / name).read_text()
    assert not (tmp_path / "b" / "front.json").exists()


def test_over_the_limit_is_never_trained_and_the_log_says_why(
        tmp_path: Path, phantom_spleen: Path, phantom_cache: Path) -> None:
    limit = _limit(phantom_spleen, phantom_cache)
    config = SearchConfig.from_dict({**yaml.safe_load(_config(
        tmp_path, phantom_spleen, phantom_cache).read_text()), "max_macs": limit})
    executor = CountingExecutor()
    run_search(config, tmp_path / "run", executor=executor)
    slices = load_slices(phantom_spleen, phantom_cache, _preprocess())
    oracle = CostOracle(slices.in_channels, slices.n_classes, 4, 32)
    sent = {architecture_from_dict(a).key: a for a in executor.sent}
    assert len(sent) == BUDGET
    for arch in sent.values():
        assert oracle.figures(architecture_from_dict(arch), ("macs",))["macs"] <= limit
    lines = _lines(tmp_path / "run")
    skipped = [e for e in lines if "skipped" in e]
    assert skipped, "no neighbour was over the limit: the test limit is too loose"
    for s in skipped:
        assert s["figures"]["macs"] > limit and s["skipped"].startswith("macs ")
        assert s["key"] not in sent
    assert all(e["costs"]["macs"] <= limit for e in lines if "skipped" not in e)


def test_a_start_over_a_limit_is_refused_with_its_figures(
        tmp_path: Path, phantom_spleen: Path, phantom_cache: Path, capsys) -> None:
    cfg = _config(tmp_path, phantom_spleen, phantom_cache, start="unet")
    code = main(["search", "--config", str(cfg), "--out", str(tmp_path / "r"),
                 "--max-macs", "1M"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert "start 'unet' is over the limits (macs" in err and "> max 1.0M MAC" in err
    assert main(["search", "--config", str(cfg), "--out", str(tmp_path / "s"),
                 "--max-macs", "lots"]) == 2
    assert "max-macs must be a number" in capsys.readouterr().err


@pytest.fixture(scope="module")
def pareto_run(tmp_path_factory, phantom_spleen: Path, phantom_cache: Path
               ) -> tuple[Path, list[str]]:
    """A finished two-objective search (Dice, MACs) under a MACs limit, and its flags.

    One search exercises both states a cost-aware search adds to its checkpoint: the
    Pareto archive and the architectures skipped over a limit.
    """
    tmp = tmp_path_factory.mktemp("pareto")
    cfg = _config(tmp, phantom_spleen, phantom_cache)
    flags = [*PARETO, "--max-macs", str(_limit(phantom_spleen, phantom_cache))]
    assert main(["search", "--config", str(cfg), "--out", str(tmp / "run"), *flags]) == 0
    return tmp / "run", flags


def test_cost_search_killed_with_sigkill_resumes_to_the_same_end(
        tmp_path: Path, phantom_spleen: Path, phantom_cache: Path,
        pareto_run: tuple[Path, list[str]]) -> None:
    # The plain search's SIGKILL test is in test_driver_search.py; this one adds the
    # Pareto archive and the skipped architectures to what must survive the kill.
    whole_run, flags = pareto_run
    cfg = _config(tmp_path, phantom_spleen, phantom_cache)
    # mid-way through the second evaluation
    out = kill_and_resume(cfg, tmp_path / "killed", 3, *flags)
    whole, resumed = _lines(whole_run), _lines(out)
    assert resumed == whole
    assert any("skipped" in e for e in whole), "nothing was over the limit: it is too loose"
    trained = [e for e in whole if "skipped" not in e]
    assert len(trained) == BUDGET
    assert any(e["archive"] for e in trained) and all("macs" in e["costs"] for e in trained)
    front = json.loads((out / "front.json").read_text())
    assert {m["arch_key"] for m in front["members"]} == {e["key"] for e in trained
                                                         if e["archive"]}
    assert front["objectives"] == ["dice", "macs"]


def test_evaluate_front_and_the_report_show_the_front(
        pareto_run: tuple[Path, list[str]], tmp_path: Path) -> None:
    run, _ = pareto_run
    front = json.loads((run / "front.json").read_text())
    evaluation, report = tmp_path / "evaluation", tmp_path / "report"
    assert main(["evaluate", str(run), "--front", "--baselines", "none", "--seeds", "1",
                 "--folds", "2", "--epochs", "1", "--device", "cpu", "--out",
                 str(evaluation)]) == 0
    evaluated = json.loads((evaluation / "evaluation.json").read_text())
    keys = {d["arch_key"] for d in evaluated["details"].values()}
    assert keys >= {m["arch_key"] for m in front["members"]}
    assert main(["report", "--evaluation", str(evaluation), "--out", str(report)]) == 0
    html = (report / "report.html").read_text()
    assert "Pareto front" in html and "latency" in html
    assert list((report / "figures").glob("front_*.png"))
    table = (report / "front.md").read_text()
    for m in front["members"]:
        assert m["arch_key"] in table
    card = json.loads((report / "card.json").read_text())
    assert "dice, macs (Pareto local search" in json.dumps(card["objectives"])
