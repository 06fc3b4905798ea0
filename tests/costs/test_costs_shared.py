"""Every registered cost figure passes the kit's check (:mod:`mbnas.testing.costs`), and the
cost recipe of docs/extending.md (``disk``) reaches the flags, the config, the front and
the card as one file and one registration."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mbnas.cli import main
from mbnas.costs.registry import COSTS, limit_figures, objective_names
from mbnas.reporting.front import front_markdown, front_section, objectives_text
from mbnas.testing import check_cost

BUILT_IN = COSTS.names()


@pytest.mark.parametrize("name", BUILT_IN)
def test_every_cost_figure_passes_the_shared_check(name: str) -> None:
    check_cost(name)


def test_the_built_in_limits_keep_their_config_keys() -> None:
    assert {n: f.limit for n, f in limit_figures().items()} == {
        "params": "max_params", "macs": "max_macs", "memory": "max_memory",
        "latency": "max_latency_ms"}
    assert objective_names() == ("params", "macs", "memory", "latency")


def test_the_cost_registry_and_the_kit_import_no_torch() -> None:
    code = ("import sys, mbnas.costs.registry, mbnas.testing; "
            "from mbnas.costs.registry import COSTS; COSTS.names(); "
            "assert 'torch' not in sys.modules, 'torch imported'")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def _old_front() -> dict:
    """A front.json as written before the disk figure existed."""
    figures = {"params": 2.0e6, "macs": 6.2e7, "memory": 3.0 * 2 ** 20, "latency": 1.5}
    return {"objectives": ["dice", "macs"], "limits": {}, "image_size": 32,
            "base_channels": 4, "latency_device": "cpu", "protocol_key": "p",
            "members": [{"genotype": {"name": "a"}, "arch_key": "k1", "score": 0.8,
                         "figures": figures}],
            "baselines": {"U-Net": dict(figures)}}


def test_the_disk_recipe_is_one_file_and_one_registration(plugin, phantom_spleen: Path,
                                                           tmp_path: Path, capsys) -> None:
    plugin.recipe("A cost figure", COSTS)
    assert "disk" in COSTS.names() and "disk" in objective_names()
    check_cost("disk")  # the shared check covers it, with no new test code

    # --max-disk and --objectives dice,disk, saved in config.yaml as max_disk
    code = main(["search", str(phantom_spleen), "--out", str(tmp_path / "run"), "--dry-run",
                 "--protocol", "quick", "--max-disk", "2M", "--objectives", "dice,disk"])
    out = capsys.readouterr().out
    assert code == 0
    config = yaml.safe_load(out.split("protocol key")[0])
    assert config["max_disk"] == 2e6 and config["objectives"] == ["dice", "disk"]
    assert "more_limits" not in config

    from mbnas.commands.search.config import SearchConfig

    again = SearchConfig.from_dict({k: v for k, v in config.items() if k != "out"})
    assert again.more_limits == {"disk": 2e6} and again.to_dict()["max_disk"] == 2e6

    # the card's objectives line names the limit, its cost line the evaluated figure
    assert "disk <= 2.0M B" in objectives_text(config)
    from mbnas.commands.common.model_cost import measure_cost
    from mbnas.reporting.card import cost_summary
    from mbnas.reporting.report_data import ModelCost, ModelEvaluation
    from mbnas.spaces.mbnas import preset

    cost = measure_cost(preset("unet").to_dict(), 1, 2, 4, 32, "cpu")
    assert set(cost.more) == {"disk"} and cost.more["disk"] > cost.params * 4  # fp32 + header
    assert ModelCost.from_dict(json.loads(json.dumps(cost.to_dict()))) == cost
    line = cost_summary([ModelEvaluation("U-Net", "baseline", cost=cost)])["U-Net"]
    assert f"disk {COSTS.get('disk').format(cost.more['disk'])}" in line

    # a front.json written before the figure existed still reports: "not measured"
    old = _old_front()
    table = front_markdown(old, "old run")
    assert "| disk |" in table and "not measured" in table
    (tmp_path / "figs").mkdir()
    html, files = front_section([("old run", old, [])], [], tmp_path / "figs", tmp_path,
                                lambda paths, caption: None)
    assert "not measured" in html and (tmp_path / "front.md").is_file()


def test_an_old_front_without_a_figure_reports_not_measured(tmp_path: Path) -> None:
    old = _old_front()
    for member in old["members"]:
        del member["figures"]["latency"]  # a figure this file does not hold
    table = front_markdown(old, "old run")
    assert "not measured" in table and "2.000 M" in table
    (tmp_path / "figs").mkdir()
    html, _ = front_section([("old run", json.loads(json.dumps(old)), [])], [],
                            tmp_path / "figs", tmp_path, lambda paths, caption: None)
    assert "not measured" in html


def test_the_built_in_limits_read_and_write_config_yaml_as_before(phantom_spleen: Path) -> None:
    from mbnas.commands.search.config import SearchConfig

    settings = {"data_dir": str(phantom_spleen), "objectives": ["dice", "macs"],
                "max_params": "2M", "max_macs": 5e7, "max_memory": "2GiB",
                "max_latency_ms": 12}
    saved = SearchConfig.from_dict(dict(settings)).to_dict()
    assert {k: saved[k] for k in ("max_params", "max_macs", "max_memory", "max_latency_ms")} \
        == {"max_params": 2e6, "max_macs": 5e7, "max_memory": 2.0 ** 31, "max_latency_ms": 12.0}
    assert "more_limits" not in saved and "strategy_options" not in saved
    plain = SearchConfig.from_dict({"data_dir": str(phantom_spleen)}).to_dict()
    assert not any(k.startswith("max_") and k != "max_depth" for k in plain)


def test_a_model_cost_without_other_figures_is_stored_as_before() -> None:
    from mbnas.reporting.report_data import ModelCost

    old = {"params": 10, "macs": 2.0, "macs_input_size": [32, 32], "macs_32": 2.0,
           "macs_paper": 3.0, "latency_ms": 1.0, "peak_memory_mb": 1.0, "device": "cpu"}
    cost = ModelCost.from_dict(old)
    assert cost.more == {} and cost.to_dict() == old  # evaluation.json unchanged
