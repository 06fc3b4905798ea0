"""What the commands print at their end: the front of a cost search, the report's hint."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from mbnas.cli.evaluate_report import evaluates
from mbnas.cli.search import front_lines
from mbnas.commands.common.runfolder import EvaluationFolder, RunFolder


def test_a_cost_search_ends_with_its_front(tmp_path: Path) -> None:
    members = [{"arch_key": "a" * 16, "score": 0.8, "figures": {"macs": 5e6, "params": 2e5}},
               {"arch_key": "b" * 16, "score": 0.6, "figures": {"macs": 1e6, "params": 3e5}}]
    (tmp_path / "front.json").write_text(json.dumps(
        {"objectives": ["dice", "macs", "params"], "members": members}))
    lines = front_lines(RunFolder(tmp_path))
    assert lines[0] == (f"Pareto front: 2 network(s) over dice, macs, params; "
                        f"{tmp_path / 'front.json'}")
    assert "best dice: 0.8000 (aaaaaaaa)" in lines[1]
    assert "lowest macs: 1e+06 (bbbbbbbb" in lines[2] and "lowest params: 2e+05 (aaaaaaaa" \
        in lines[3]
    assert lines[-1].endswith("--front")
    assert front_lines(RunFolder(tmp_path / "dice_only")) == []


def test_report_suggests_only_an_evaluation_of_the_same_search(tmp_path: Path) -> None:
    ev = tmp_path / "evaluation"
    ev.mkdir()
    (ev / "evaluation.json").write_text("{}")
    (ev / "config.yaml").write_text(yaml.safe_dump({"run_dirs": [str(tmp_path / "run_a")]}))
    folder = EvaluationFolder(ev)
    assert evaluates(folder, [str(tmp_path / "run_a")])
    assert not evaluates(folder, [str(tmp_path / "front")])  # another search's evaluation
    assert not evaluates(EvaluationFolder(tmp_path / "none"), [str(tmp_path / "run_a")])
