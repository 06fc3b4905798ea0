"""Bad input gives one line and exit code 2, never a traceback (issue 11, item 10)."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import pytest
import yaml

from mbnas.cli import main
from mbnas.spaces.mbnas import preset


def _one_line(capsys: pytest.CaptureFixture) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: "), err
    return err


@pytest.mark.parametrize(("setting", "field"), [
    ({"budget": "3"}, "search.budget"), ({"seed": -1}, "search.seed"),
    ({"protocol": {"lr": -1}}, "protocol.lr"),
])
def test_wrong_settings_in_config_file(tmp_path: Path, capsys, setting, field) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({"data_dir": str(tmp_path), **setting}))
    assert main(["search", "--config", str(cfg), "--out", str(tmp_path / "o")]) == 2
    assert field in _one_line(capsys)
    assert not (tmp_path / "o").exists()


def test_seed_flag_negative(tmp_path: Path, capsys) -> None:
    assert main(["search", str(tmp_path), "--seed", "-1", "--out", str(tmp_path / "o")]) == 2
    assert "search.seed" in _one_line(capsys)


def test_output_paths_that_are_files(tmp_path: Path, capsys) -> None:
    existing = tmp_path / "file"
    existing.write_text("x")
    assert main(["search", str(tmp_path), "--protocol", "quick", "--out", str(existing)]) == 2
    assert "existing file" in _one_line(capsys)
    assert main(["search", str(tmp_path), "--protocol", "quick",
                 "--out", str(existing / "sub")]) == 2
    assert "under a file" in _one_line(capsys)
    assert main(["report", "--evaluation", str(tmp_path), "--out", str(existing)]) == 2
    assert "existing file" in _one_line(capsys)
    assert main(["predict", "--model", str(tmp_path), "--input", str(tmp_path),
                 "--output", str(existing)]) == 2
    assert "existing file" in _one_line(capsys)
    assert main(["predict", "--model", str(tmp_path), "--input", str(tmp_path),
                 "--output", str(tmp_path / "x.nii.gz")]) == 2
    assert "not a file name" in _one_line(capsys)
    assert not (tmp_path / "x.nii.gz").exists()
    assert existing.read_text() == "x"


def test_genotype_with_thousands_of_nodes_and_absurd_size(tmp_path: Path, capsys) -> None:
    node = preset("unet").to_dict()["nodes"][0]
    big = tmp_path / "big.json"
    big.write_text(json.dumps({"kind": "genotype", "nodes": [node] * 5000}))
    assert main(["space", "cost", str(big), "--no-memory"]) == 2
    assert "at most 64 nodes" in _one_line(capsys)
    assert main(["space", "cost", "unet", "--size", "10000000", "--no-memory"]) == 2
    assert "--size" in _one_line(capsys)


def test_broken_search_log_in_report(tmp_path: Path, capsys) -> None:
    from mbnas.commands.common.runfolder import RunFolder

    (tmp_path / "search_log.jsonl").write_text('{"index": 0}\n{"index": 1, "sco\n')
    with pytest.raises(Exception, match="search_log.jsonl: line 2") as info:
        RunFolder(tmp_path).read_search_log()
    assert type(info.value).__name__ == "ConfigError"


def test_os_errors_are_one_line_with_the_path_but_bugs_are_not_swallowed(
        tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    import mbnas.cli.space as space_cli

    full = tmp_path / "weights.pt"

    def disk_full(args):
        raise OSError(errno.ENOSPC, "No space left on device", str(full))

    monkeypatch.setattr(space_cli, "cmd_cost", disk_full)
    assert main(["space", "cost", "unet"]) == 2
    assert _one_line(capsys) == f"error: {full}: No space left on device"

    def bug(args):
        raise TypeError("a programming error")

    monkeypatch.setattr(space_cli, "cmd_cost", bug)
    with pytest.raises(TypeError):
        main(["space", "cost", "unet"])


def _evaluation(tmp_path: Path) -> dict:
    from mbnas.commands.common.evaluation_file import EvaluationFile, ModelDetails
    from mbnas.reporting.report_data import ModelEvaluation

    return EvaluationFile(
        config={"protocol": {}, "data_dir": str(tmp_path), "run_dirs": []}, protocol_key="p",
        label_names={0: "background", 1: "spleen"}, channel_names=("CT",), sites={},
        folds=(("a",),), models=(ModelEvaluation("M", "searched"),),
        details={"M": ModelDetails("k", "models/m", 1)}).to_dict()


def test_evaluation_file_round_trips(tmp_path: Path) -> None:
    from mbnas.commands.common.evaluation_file import read_evaluation

    (tmp_path / "evaluation.json").write_text(json.dumps(_evaluation(tmp_path)))
    evaluation, models = read_evaluation(tmp_path)
    assert evaluation.to_dict() == _evaluation(tmp_path)
    assert [m.name for m in models] == ["M"] and evaluation.details["M"].model_dir == "models/m"


@pytest.mark.parametrize(("change", "key"), [
    (lambda d: d.pop("models"), "models"),
    (lambda d: d["config"].pop("data_dir"), "config.data_dir"),
    (lambda d: d["details"]["M"].pop("model_dir"), "details.M.model_dir"),
    (lambda d: d["models"][0].pop("name"), "models[0].name"),
    (lambda d: d.update(folds="a,b"), "folds"),
    (lambda d: d["details"]["M"].update(runs="one"), "details.M.runs"),
])
def test_evaluation_json_missing_keys_in_report(tmp_path: Path, capsys, change, key) -> None:
    evaluation = _evaluation(tmp_path)
    change(evaluation)
    path = tmp_path / "evaluation.json"
    path.write_text(json.dumps(evaluation))
    assert main(["report", "--evaluation", str(tmp_path), "--out", str(tmp_path / "r")]) == 2
    err = _one_line(capsys)
    assert str(path) in err and f"'{key}'" in err and "Traceback" not in err
