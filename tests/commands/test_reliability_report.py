"""`mbnas report` and `mbnas evaluate` facing edited, busy or foreign folders (issue 34
items 4, 20, 21; issue 35 item 5): each is refused in one line, exit code 2, and nothing
the user put there is touched."""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from mbnas.cli import main
from mbnas.commands.common.runfolder import RunLock
from mbnas.data import make_phantom


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


SEARCH = ["--protocol", "quick", "--epochs", "1", "--folds", "2", "--image-size", "32",
          "--threads", "1", "--device", "cpu", "--start", "unet"]
EVALUATE = ["--baselines", "none", "--seeds", "1", "--folds", "2", "--threads", "1",
            "--device", "cpu"]


@pytest.fixture(scope="module")
def extended(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """A search evaluated after 1 evaluation, then extended to 2, whose best changed
    (issue 35 item 5's steps, at the smallest scale where the best moves)."""
    root = tmp_path_factory.mktemp("extended")
    data = make_phantom(root / "phantom", "spleen", n_cases=6, seed=0, shape=(48, 48, 8))
    run, ev = root / "run", root / "evaluation"
    search = ["search", str(data), *SEARCH, "--cache", str(root / "cache"), "--out", str(run)]
    assert main([*search, "--budget", "1"]) == 0
    then = json.loads((run / "best.json").read_text())["arch_key"]
    assert main(["evaluate", str(run), *EVALUATE, "--out", str(ev)]) == 0
    assert main([*search, "--budget", "2"]) == 0
    now = json.loads((run / "best.json").read_text())["arch_key"]
    assert now != then, "precondition: the extended search found a better network"
    return SimpleNamespace(root=root, data=data, run=run, evaluation=ev, then=then, now=now)


def test_report_labels_an_evaluation_of_an_earlier_best(extended: SimpleNamespace,
                                                         capsys) -> None:
    """Issue 35 item 5: the new best drawn beside Table 1 of the old one is said so."""
    capsys.readouterr()
    out = extended.root / "report"
    assert main(["report", "--evaluation", str(extended.evaluation), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    stale = [line for line in printed.splitlines() if "STALE EVALUATION" in line]
    assert len(stale) == 1 and extended.now in stale[0] and extended.then in stale[0]
    assert "after 1 of its 2 evaluations" in stale[0]
    assert "STALE EVALUATION" in (out / "report.html").read_text()


def test_model_folders_record_the_search_state_they_came_from(
        extended: SimpleNamespace) -> None:
    """Issue 35 item 5: an exported model folder (and so its ONNX copy of model.json)
    says which state of the search it holds."""
    for folder in (extended.run / "model", extended.evaluation / "models" / "mb-nas"):
        state = json.loads((folder / "model.json").read_text())["search"]
        assert state["run_dir"] == str(extended.run.resolve())
        assert state["evaluations"] == 1 and state["budget"] == 1
        assert state["arch_key"] == extended.then


def test_an_onnx_folder_keeps_the_search_state(extended: SimpleNamespace,
                                               tmp_path: Path) -> None:
    """Issue 35 item 5: ``export onnx`` copies model.json, so the ONNX folder says it too."""
    pytest.importorskip("onnxscript")
    out = tmp_path / "onnx"
    assert main(["export", "onnx", str(extended.run / "model"), "--out", str(out)]) == 0
    state = json.loads((out / "model.json").read_text())["search"]
    assert state["evaluations"] == 1 and state["arch_key"] == extended.then


@contextlib.contextmanager
def _immutable(folder: Path) -> Iterator[None]:
    """The folder and its files made unwritable by the kernel, even for root (ext4's
    immutable attribute: no file can be created, changed or removed there), as on a
    read-only file system; the tests run as root, where permission bits stop nothing."""
    if shutil.which("chattr") is None or subprocess.run(
            ["chattr", "-R", "+i", str(folder)], capture_output=True).returncode != 0:
        pytest.skip("cannot make a folder immutable here (chattr +i needs root and ext4)")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-R", "-i", str(folder)], check=True)


def test_evaluate_reads_a_search_folder_on_read_only_media(extended: SimpleNamespace,
                                                           tmp_path: Path, capsys) -> None:
    """Issue 34 item 18: as report and predict do, evaluate reads a search folder it
    cannot write (no lock can be taken there: nothing can be writing it either)."""
    run = tmp_path / "run"
    shutil.copytree(extended.run, run)
    shutil.rmtree(run / "model")
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    with _immutable(run):
        code = main(["evaluate", str(run), *EVALUATE, "--out", str(tmp_path / "ev")])
        printed = capsys.readouterr()
    assert code == 0, printed.err
    assert f"{run / 'model'} not written" in printed.out
    assert (tmp_path / "ev" / "models" / "mb-nas" / "model.json").is_file()
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before


def test_evaluate_estimate_counts_every_network_and_step(extended: SimpleNamespace,
                                                         tmp_path: Path, capsys) -> None:
    """Issue 35 item 7: the U-Net preset the evaluation adds (quick's 8 base channels are
    narrower than the paper's) is timed and counted, and so are the network costs and
    the metrics on the original grid; nothing is written."""
    capsys.readouterr()
    out = tmp_path / "ev"
    assert main(["evaluate", str(extended.run), *EVALUATE, "--estimate", "--out",
                 str(out)]) == 0
    text = capsys.readouterr().out
    assert not out.exists()
    assert "MB-NAS" in text and "U-Net preset (width 8)" in text
    assert text.count("per run") == 2  # the searched network and the preset
    assert "network costs (2 networks)" in text
    # 2 networks x 1 seed x 6 cases, each validated once per seed
    assert "metrics on the original grid (12 cases)" in text
    assert "evaluation: 2 evaluation(s) and 2 other step(s)" in text


def test_evaluate_time_left_counts_the_steps_after_the_runs(extended: SimpleNamespace,
                                                            capsys) -> None:
    """Issue 35 item 7: the evaluation's time left includes the metrics on the original
    grid that follow its runs (timed on a case), not the runs alone."""
    from mbnas.cli.evaluate_report import RunProgress, evaluate_settings
    from mbnas.cli.speed import after_runs_seconds

    config = evaluate_settings(_parsed(["evaluate", str(extended.run), *EVALUATE]))
    after = after_runs_seconds(config)
    assert after > 0
    progress = RunProgress(4, after=600.0)
    progress.plain = True  # the plain lines of a batch job
    spec = SimpleNamespace(label="net fold 0 seed 0")
    for _ in range(2):
        progress.run_started(spec)
        progress.run_done(SimpleNamespace(status="finished", seconds=30.0))
    progress.run_started(spec)
    line = capsys.readouterr().out.strip().splitlines()[-1]
    # 2 runs of 30 s still to train, then 600 s of metrics: 11 min
    assert line.endswith("~11m00s left (runs, then metrics)"), line


def _parsed(argv: list[str]):
    from mbnas.cli import build_parser

    return build_parser().parse_args(argv)
