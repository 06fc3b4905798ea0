"""Two commands truly overlapping on one run folder (issue 24): the first is held inside
its lock by a barrier until the second has tried, so the overlap is certain, not timed."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

import mbnas
from mbnas.cli import main

TINY = {"epochs": 1, "folds": 2, "seeds": [0], "image_size": 32, "base_channels": 4}
BUSY = "another mbnas process"


class Barrier:
    """Run hooks that stop the first run inside the command (its folders locked) until
    the test has tried the second command."""

    def __init__(self, at_run: int) -> None:
        self.inside, self.go = threading.Event(), threading.Event()
        self.at_run, self.started = at_run, 0

    def run_started(self, spec: Any) -> None:
        self.started += 1
        if self.started == self.at_run:
            self.inside.set()
            assert self.go.wait(timeout=600), "the test never released the barrier"

    def epoch_done(self, spec: Any, stats: Any) -> None:
        pass


def _held(first: Any, at_run: int = 1) -> tuple[Barrier, threading.Thread, list[Any]]:
    barrier, result = Barrier(at_run), []
    thread = threading.Thread(target=lambda: result.append(first(hooks=barrier)))
    thread.start()
    assert barrier.inside.wait(timeout=600)
    return barrier, thread, result


def _refused(capsys: pytest.CaptureFixture, code: int) -> str:
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    return err


def test_overlapping_commands_on_one_folder(tmp_path: Path, phantom_spleen: Path,
                                            phantom_cache: Path, capsys) -> None:
    run, ev, rep = tmp_path / "run", tmp_path / "ev", tmp_path / "report"
    cli_search = ["search", str(phantom_spleen), "--protocol", "quick", "--epochs", "1",
                  "--folds", "2", "--image-size", "32", "--budget", "2", "--start", "unet",
                  "--threads", "1", "--cache", str(phantom_cache), "--out", str(run)]
    cli_eval = ["evaluate", str(run), "--baselines", "none", "--seeds", "1", "--folds", "2",
                "--threads", "1", "--out", str(ev)]
    # search + evaluate, search + search: a search holds its run folder (held in its
    # second evaluation, once best.json exists).
    barrier, thread, _ = _held(
        lambda hooks: mbnas.search(phantom_spleen, run, protocol="quick", budget=2,
                                   start="unet", threads=1, cache_dir=str(phantom_cache),
                                   protocol_overrides=TINY, hooks=hooks), at_run=3)
    try:
        assert BUSY in _refused(capsys, main(cli_eval))
        assert BUSY in _refused(capsys, main(cli_search))
    finally:
        barrier.go.set()
        thread.join()
    assert not ev.exists()
    # evaluate + evaluate, evaluate + search, evaluate + report: an evaluation holds its
    # folder and the run folders it reads.
    barrier, thread, done = _held(
        lambda hooks: mbnas.evaluate(run, ev, seeds=1, folds=2, baselines=("none",), threads=1,
                                     hooks=hooks))
    try:
        assert BUSY in _refused(capsys, main(cli_eval))
        assert BUSY in _refused(capsys, main(cli_search))
        err = _refused(capsys, main(["report", str(run), "--evaluation", str(ev), "--out",
                                     str(rep)]))
        assert BUSY in err and str(ev) in err
        assert not rep.exists()
    finally:
        barrier.go.set()
        thread.join()
    assert done and done[0].n_trained == 2 and not done[0].failed
    capsys.readouterr()
    # After the overlap, each command works and finds the other's complete results.
    assert main(["report", str(run), "--evaluation", str(ev), "--out", str(rep)]) == 0
    assert main(cli_eval) == 0 and "(0 trained now" in capsys.readouterr().out
