"""Progress of the long steps: counts, the API's callback and log records, the command
line's plain lines outside a terminal, and the evaluation's run counter."""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from mbnas.cli import main
from mbnas.cli.evaluate_report import RunProgress
from mbnas.cli.steps import PlainSink, plain_interval
from mbnas.errors import ConfigError
from mbnas.progress import CallbackSink, LogSink, Step, format_seconds, track, use_sink


def _record(seen: list[tuple[int, bool, bool]]) -> CallbackSink:
    return CallbackSink(lambda step: seen.append((step.done, step.finished, step.stopped)))


def test_a_step_counts_each_item_once_and_ends_done() -> None:
    seen: list[tuple[int, bool, bool]] = []
    with use_sink(_record(seen)), track("preprocessing", 3, unit="case") as step:
        for case in step.each(["a", "b", "c"]):
            if case == "b":
                continue  # skipped items count too: the step is through them
    assert seen == [(0, False, False), (1, False, False), (2, False, False),
                    (3, False, False), (3, True, False)]
    text = step.describe()
    assert text.startswith("preprocessing: 3/3 cases (last: c), done in ")


def test_a_failing_step_ends_stopped() -> None:
    seen: list[tuple[int, bool, bool]] = []
    with pytest.raises(RuntimeError), use_sink(_record(seen)), track("export", 2) as step:
        step.advance(info="first")
        raise RuntimeError("disk full")
    assert seen[-1] == (1, True, True)
    assert "export: 1/2 items (last: first), stopped after " in step.describe()


def test_the_time_left_follows_the_rate_so_far() -> None:
    step = Step("metrics", total=10, unit="case", done=4, started=0.0)
    assert math.isnan(Step("metrics", total=10).seconds_left)  # nothing done yet
    assert math.isnan(Step("metrics", done=3).seconds_left)  # no total
    left = step.seconds_left
    assert left == pytest.approx(step.elapsed * 6 / 4, rel=0.01)
    assert f"~{format_seconds(left)} left" in step.describe()
    assert format_seconds(3725) == "1h02m" and format_seconds(65) == "1m05s"
    assert format_seconds(math.nan) == "?"


def test_the_api_logs_steps_by_default(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="mbnas.progress")
    with track("network costs", 2, unit="network") as step:  # no sink set: the logger's
        step.advance(info="unet")
        step.advance(info="smp-unet")
    messages = [r.getMessage() for r in caplog.records if r.name == "mbnas.progress"]
    assert messages[0] == "network costs: started (2 networks)"
    assert messages[-1].startswith("network costs: 2/2 networks (last: smp-unet), done in")


def test_the_log_sink_keeps_to_its_interval(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="mbnas.progress")
    with use_sink(LogSink(every=0.0)), track("a", 3) as step:
        for _ in step.each(range(3)):
            pass
    assert len(caplog.records) == 5  # begin, three items, end
    caplog.clear()
    with use_sink(LogSink(every=math.inf)), track("b", 3) as step:
        for _ in step.each(range(3)):
            pass
    assert len(caplog.records) == 2  # begin and end only


def _lines(capsys: pytest.CaptureFixture[str]) -> list[str]:
    return [line.split(" ", 2)[2] for line in capsys.readouterr().out.splitlines()]


def test_plain_lines_come_late_then_as_a_heartbeat(capsys: pytest.CaptureFixture[str]) -> None:
    # long intervals, so the sink's own thread prints nothing while the test runs;
    # the test moves the clock itself
    sink = PlainSink(every=600.0, first=100.0)
    step = Step("metrics on the original grid", total=4, unit="case", sink=sink)
    sink.begin(step)
    step.advance(info="lung1")
    sink._print_due(step.started + 50)
    assert capsys.readouterr().out == ""  # under the first line's delay: quiet
    sink._print_due(step.started + 101)
    (first,) = _lines(capsys)
    assert first.startswith("metrics on the original grid: 1/4 cases (last: lung1)")
    sink._print_due(step.started + 300)
    assert capsys.readouterr().out == ""
    sink._print_due(step.started + 702)  # nothing advanced, a line all the same
    assert len(_lines(capsys)) == 1
    step.done, step.finished = 4, True  # as track() ends it
    sink.end(step)
    (last,) = _lines(capsys)
    assert ", done in " in last
    sink._print_due(step.started + 2000)
    assert capsys.readouterr().out == ""  # nothing after the end line


def test_a_short_step_prints_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    sink = PlainSink(every=600.0, first=100.0)
    with use_sink(sink), track("report", 2) as step:
        step.advance()
        step.advance()
    assert capsys.readouterr().out == ""


def test_interval_zero_prints_every_change(capsys: pytest.CaptureFixture[str]) -> None:
    with use_sink(PlainSink(every=0.0)), track("ONNX export", 2, unit="network") as step:
        step.advance(info="a")
        step.advance(info="b")
    lines = _lines(capsys)
    assert [line.split(",")[0] for line in lines] == [
        "ONNX export: 0/2 networks", "ONNX export: 1/2 networks (last: a)",
        "ONNX export: 2/2 networks (last: b)", "ONNX export: 2/2 networks (last: b)"]
    assert ", done in " in lines[-1]


def test_the_interval_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch,
                                                 tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("MBNAS_PROGRESS_SECONDS", raising=False)
    assert plain_interval() == 60.0
    monkeypatch.setenv("MBNAS_PROGRESS_SECONDS", "5")
    assert plain_interval() == 5.0
    monkeypatch.setenv("MBNAS_PROGRESS_SECONDS", "soon")
    with pytest.raises(ConfigError, match="MBNAS_PROGRESS_SECONDS"):
        plain_interval()
    assert main(["check", str(tmp_path)]) != 0  # refused before the command runs
    err = capsys.readouterr().err.strip()
    assert "MBNAS_PROGRESS_SECONDS" in err and "'soon'" in err
    assert "Traceback" not in err and len(err.splitlines()) == 1


def _spec(label: str) -> SimpleNamespace:
    return SimpleNamespace(label=label, protocol=SimpleNamespace(epochs=2))


def test_a_resumed_evaluation_counts_to_its_total(capsys: pytest.CaptureFixture[str]) -> None:
    progress = RunProgress(4)  # stdout is captured, not a terminal: plain lines
    with progress:
        progress.runs_queued(1, 3)  # three runs answered by the store, one to train
        progress.run_started(_spec("unet fold 1 seed 0"))
        progress.run_done(SimpleNamespace(status="finished", seconds=2.0))
    out = capsys.readouterr().out
    assert "3 of 4 runs are in the store; 1 to train" in out
    assert "run 4/4: unet fold 1 seed 0" in out and "run 5/4" not in out
    assert progress.done == 4
    assert progress.progress.tasks[0].completed == 4


def test_the_heartbeat_thread_ends_with_the_last_step() -> None:
    sink = PlainSink(every=600.0, first=100.0)
    with use_sink(sink), track("report", 1):
        thread = sink._thread
        assert thread is not None and thread.is_alive()
        time.sleep(0.2)  # the thread is in its long wait now
    thread.join(timeout=30)  # woken by the end: it does not wait out its interval
    assert not thread.is_alive() and sink._thread is None
    with use_sink(sink), track("report", 1):  # a later step gets a new one
        assert sink._thread is not None and sink._thread is not thread


def test_the_terminal_bar_shows_the_count_and_the_time_left() -> None:
    from mbnas.cli.steps import TerminalSink

    sink = TerminalSink()
    with use_sink(sink), track("ONNX export", 2, unit="network") as step:
        step.advance(info="fold0_seed0")
        (task,) = sink.progress.tasks
        assert (task.completed, task.total) == (1, 2)
        assert task.fields["info"] == "fold0_seed0"
        assert task.fields["left"].startswith("~") and task.fields["left"].endswith(" left")
    assert sink.progress.tasks == [] and not sink.progress.live.is_started
