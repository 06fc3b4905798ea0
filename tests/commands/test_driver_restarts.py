"""`mbnas search --restarts` end to end: a search that converges early spends its budget."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from mbnas.cli import main
from mbnas.spaces import registry as space_registry
from mbnas.spaces.mbnas import get_space, preset
from mbnas.spaces.registry import SpaceDefinition

BUDGET = 12
# The skips of the U-Net topology, 0 or 1: 32 networks, a pass of at most 5 probes, so
# local search reaches a local optimum well before 12 evaluations.
SKIPS_ONLY = SpaceDefinition("skips-only-test", "d", skips=(0, 1))


@pytest.fixture
def skips_only() -> Iterator[str]:
    space_registry.register_space(SKIPS_ONLY)
    yield SKIPS_ONLY.name
    space_registry.SPACES_REGISTRY.unregister(SKIPS_ONLY.name)


def test_a_search_with_restarts_spends_its_whole_budget(
        skips_only: str, tmp_path: Path, phantom_spleen: Path, phantom_cache: Path) -> None:
    space = get_space(skips_only)
    assert len(space.neighbours(preset("unet"))) < BUDGET // 2
    cfg = tmp_path / "search.yaml"
    cfg.write_text(yaml.safe_dump({
        "data_dir": str(phantom_spleen), "space": skips_only, "budget": BUDGET, "seed": 1,
        "start": "unet", "cache_dir": str(phantom_cache), "threads": 1,
        "protocol": {"epochs": 1, "folds": 2, "seeds": [0], "image_size": 32,
                     "base_channels": 4, "batch_size": 16, "samples_per_epoch": 0},
    }))
    run = tmp_path / "run"
    assert main(["search", "--config", str(cfg), "--out", str(run), "--restarts"]) == 0
    log = [json.loads(x) for x in (run / "search_log.jsonl").read_text().splitlines()]
    assert len(log) == BUDGET == len({e["key"] for e in log})
    first = next(e for e in log if e.get("restart"))
    assert first["variable"] is None and first["index"] < BUDGET - 1
    assert all(e.get("restart", 0) == 0 for e in log[:first["index"]])
    assert f"restart 1: local optimum reached; evaluation {first['index'] + 1}" in \
        (run / "search.log").read_text()
    assert yaml.safe_load((run / "config.yaml").read_text())["restarts"] is True


def test_restarts_where_nothing_restarts_are_refused_before_anything_is_written(
        tmp_path: Path, phantom_spleen: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "run"
    assert main(["search", str(phantom_spleen), "--out", str(out), "--protocol", "quick",
                 "--strategy", "random", "--restarts", "--dry-run"]) == 2
    assert "random search has no local optimum" in capsys.readouterr().err
    assert not out.exists()
