"""`mbnas report` and `mbnas evaluate` facing edited, busy or foreign folders (issue 34
items 4, 20, 21; issue 35 item 5): each is refused in one line, exit code 2, and nothing
the user put there is touched."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mbnas.cli import main
from mbnas.commands.common.runfolder import RunLock


def _one_line(capsys: pytest.CaptureFixture) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: "), err
    assert "Traceback" not in err
    return err


def _evaluation(folder: Path) -> Path:
    """A minimal, readable ``evaluation.json`` (of no real study) in ``folder``."""
    from mbnas.commands.common.evaluation_file import EvaluationFile, ModelDetails
    from mbnas.reporting.report_data import ModelEvaluation

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "evaluation.json").write_text(json.dumps(EvaluationFile(
        config={"protocol": {}, "data_dir": str(folder), "run_dirs": []}, protocol_key="p",
        label_names={0: "background", 1: "spleen"}, channel_names=("CT",), sites={},
        folds=(("a",),), models=(ModelEvaluation("M", "searched"),),
        details={"M": ModelDetails("k", "models/m", 1)}).to_dict()))
    return folder


def test_report_meeting_a_running_evaluation_names_the_evaluation(tmp_path: Path,
                                                                   capsys) -> None:
    """Issue 34 item 20: the busy folder is the evaluation, not --out."""
    ev = _evaluation(tmp_path / "ev")
    with RunLock(ev):  # an `mbnas evaluate` still writing there
        assert main(["report", "--evaluation", str(ev), "--out", str(tmp_path / "r")]) == 2
    err = _one_line(capsys)
    assert "another mbnas process" in err and str(ev) in err
    assert "--out" not in err and "wait for it to finish" in err
    assert not (tmp_path / "r").exists()


def test_report_writes_only_into_an_empty_or_earlier_report_folder(tmp_path: Path,
                                                                    capsys) -> None:
    """Issue 34 item 4: a user's own table1.csv / report.html are never replaced."""
    ev = _evaluation(tmp_path / "ev")
    mine = tmp_path / "mine"
    mine.mkdir()
    files = {"table1.csv": b"my own table\n", "report.html": b"<p>my page</p>",
             "NOTES.txt": b"notes"}
    for name, content in files.items():
        (mine / name).write_bytes(content)
    assert main(["report", "--evaluation", str(ev), "--out", str(mine)]) == 2
    err = _one_line(capsys)
    assert str(mine) in err and "not empty" in err
    assert {p.name: p.read_bytes() for p in mine.iterdir()} == files
