"""Bilevel-NAS is the strategy "bilevel" over the macro space; folders of older versions,
whose config.yaml says ``space: bilevel`` (strategy local), still resume and report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from mbnas.cli import main
from mbnas.commands.common.search_runs import progress_label, read_search_run
from mbnas.commands.search.run import SearchConfig, run_search
from mbnas.errors import ConfigError
from mbnas.store import ResultStore

BUDGET = 3
# samples_per_epoch 0: an epoch is one pass over the phantom's slices, not the 2048
# samples of the default protocol; fp32: "auto" is several times slower on CPUs without bf16.
PROTOCOL = {"epochs": 1, "folds": 2, "seeds": [0], "image_size": 32, "base_channels": 4,
            "batch_size": 16, "samples_per_epoch": 0, "precision": "fp32"}


class Stop(Exception):
    """Ends a search after its first evaluation, as a kill would."""


def _settings(data: Path, cache: Path, **extra: object) -> dict:
    return {"data_dir": str(data), "budget": BUDGET, "seed": 1, "start": "unet",
            "cache_dir": str(cache), "protocol": PROTOCOL, **extra}


def _make_old(folder: Path) -> None:
    """Rewrite a folder as the version before "bilevel" was a strategy wrote it."""
    config = yaml.safe_load((folder / "config.yaml").read_text())
    config.update(space="bilevel", strategy="local")
    (folder / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=True))
    state = json.loads((folder / "search_state.json").read_text())
    state["space"] = "bilevel-topology"
    state["run"]["settings"].update(space="bilevel", strategy="local")
    (folder / "search_state.json").write_text(json.dumps(state))


def _finished(folder: Path) -> dict[tuple[str, int], str]:
    with ResultStore(folder / "store.sqlite", read_only=True) as store:
        return {(r.arch_key, r.fold): r.finished_at for r in store.runs()}


def test_old_bilevel_folder_resumes_and_reports(tmp_path: Path, phantom_spleen: Path,
                                                phantom_cache: Path) -> None:
    config = SearchConfig.from_dict(_settings(phantom_spleen, phantom_cache, space="macro",
                                              strategy="bilevel"))
    out = tmp_path / "run"

    def stop(strategy: object, results: object) -> None:
        raise Stop

    with pytest.raises(Stop):
        run_search(config, out, on_evaluation=stop)
    first = _finished(out)
    assert len(first) == 2  # one evaluation: 2 folds x 1 seed
    _make_old(out)

    # The old folder is read as today's settings ...
    old = yaml.safe_load((out / "config.yaml").read_text())
    assert (old["space"], old["strategy"]) == ("bilevel", "local")
    assert SearchConfig.from_dict(old) == config
    run = read_search_run(out)
    assert (run.space, run.strategy, run.name) == ("macro", "bilevel", "Bilevel-NAS")
    assert progress_label(old) == "Bilevel-NAS seed 1"

    # ... and the same (old-style) settings resume it, training only what is missing.
    file = tmp_path / "old.yaml"
    file.write_text(yaml.safe_dump(_settings(phantom_spleen, phantom_cache, space="bilevel",
                                             strategy="local")))
    assert main(["search", "--config", str(file), "--out", str(out)]) == 0
    after = _finished(out)
    assert len(after) == 2 * BUDGET
    assert all(after[k] == v for k, v in first.items())  # not trained again
    log = [json.loads(x) for x in (out / "search_log.jsonl").read_text().splitlines()]
    assert [e["phase"] for e in log][0] == "topology" and len(log) == BUDGET
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert (saved["space"], saved["strategy"]) == ("macro", "bilevel")  # today's form now


def test_bilevel_strategy_needs_the_macro_space(tmp_path: Path, phantom_spleen: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["search", str(phantom_spleen), "--out", str(tmp_path / "s"),
                 "--strategy", "bilevel", "--protocol", "quick", "--dry-run"])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err == ("error: the bilevel strategy searches the macro space, not mbnas: pass "
                   "--space macro --strategy bilevel")
    with pytest.raises(ConfigError, match="not supported with the bilevel strategy"):
        SearchConfig(data_dir="x", space="macro", strategy="bilevel", objectives=("dice", "macs"))
    with pytest.raises(ConfigError, match="it takes no --strategy random"):
        SearchConfig.from_dict({"data_dir": "x", "space": "bilevel", "strategy": "random"})


def test_old_space_name_on_the_command_line_is_an_alias(
        tmp_path: Path, phantom_spleen: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["search", str(phantom_spleen), "--out", str(tmp_path / "s"),
                 "--space", "bilevel", "--protocol", "quick", "--dry-run"]) == 0
    out, err = capsys.readouterr()
    resolved = yaml.safe_load(out.split("\nprotocol key")[0])  # the last line is prose
    assert (resolved["space"], resolved["strategy"]) == ("macro", "bilevel")
    assert "--space bilevel is now --space macro --strategy bilevel" in err
