"""How the command line shows long steps (:mod:`mbnas.progress`) and shares its console.

* In a terminal: one rich bar per step, with the count, the last item and the time left;
  it disappears when the step ends (the command prints its own summary).
* Outside one (sbatch, nohup, a pipe): a timestamped plain line on stdout once the step
  has run :data:`FIRST_LINE` seconds, then one each ``$MBNAS_PROGRESS_SECONDS`` (default
  60) even when an item takes longer than that, and an end line when anything was
  printed. Steps shorter than the first line print nothing.

Every live display of the command line (search, evaluate and these steps) draws on
:func:`console`, so rich nests them instead of garbling the terminal.
"""

from __future__ import annotations

import math
import os
import sys
import threading
import time
from typing import Any

from mbnas.errors import ConfigError
from mbnas.progress import Sink, Step, format_seconds, stamp

#: Seconds a step runs before its first plain line.
FIRST_LINE = 10.0
EVERY_ENV = "MBNAS_PROGRESS_SECONDS"

_console: Any = None


def console() -> Any:
    """The command line's rich console (stderr), shared by every live display."""
    global _console
    if _console is None:
        from rich.console import Console

        _console = Console(stderr=True)
    return _console


def plain_interval() -> float:
    """Seconds between two plain progress lines: ``$MBNAS_PROGRESS_SECONDS`` or 60."""
    raw = os.environ.get(EVERY_ENV, "").strip()
    if not raw:
        return 60.0
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise ConfigError(f"${EVERY_ENV} must be a number of seconds >= 0, got {raw!r}")
    return value


class PlainSink:
    """Timestamped lines: the first after ``first`` seconds, then one each ``every``."""

    def __init__(self, every: float = 60.0, first: float = FIRST_LINE) -> None:
        self.every, self.first = every, min(first, every)
        self._steps: dict[int, Step] = {}
        self._printed: dict[int, tuple[float, int]] = {}  # step -> time, count of last line
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def begin(self, step: Step) -> None:
        with self._lock:
            self._steps[id(step)] = step
            if self._thread is None:
                self._thread = threading.Thread(target=self._beat, name="mbnas-progress",
                                                daemon=True)
                self._thread.start()
        self._print_due(time.monotonic())
        self._wake.set()

    def update(self, step: Step) -> None:
        self._print_due(time.monotonic())  # the thread covers items longer than a line

    def end(self, step: Step) -> None:
        with self._lock:  # lines are printed under the lock: none after the end line
            self._steps.pop(id(step), None)
            if self._printed.pop(id(step), None) is not None:
                stamp(step.describe())
        self._wake.set()  # the heartbeat thread ends now when this was the last step

    def _print_due(self, now: float) -> None:
        with self._lock:
            for key, step in self._steps.items():
                last = self._printed.get(key)
                if last is None:
                    ready = now - step.started >= self.first
                else:  # a heartbeat each `every`; with every=0, a line per change
                    ready = now - last[0] >= self.every and (
                        self.every > 0 or step.done != last[1])
                if ready:
                    self._printed[key] = (now, step.done)
                    stamp(step.describe())

    def _beat(self) -> None:
        """The heartbeat thread: it ends when no step is open (the next one starts anew)."""
        while True:
            self._print_due(time.monotonic())
            self._wake.wait(timeout=max(min(self.first, self.every) / 4, 0.05))
            self._wake.clear()
            with self._lock:
                if not self._steps:
                    self._thread = None
                    return


class TerminalSink:
    """One transient rich bar per step, on the shared console."""

    def __init__(self) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self.progress = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"), TimeElapsedColumn(),
            TextColumn("{task.fields[left]}"), console=console(), transient=True)
        self._tasks: dict[int, Any] = {}

    def begin(self, step: Step) -> None:
        if not self._tasks:
            self.progress.start()
        self._tasks[id(step)] = self.progress.add_task(step.name, total=step.total, info="",
                                                       left="")

    def update(self, step: Step) -> None:
        task = self._tasks.get(id(step))
        if task is not None:  # the time left at the step's own rate, as on the plain line
            left = step.seconds_left
            self.progress.update(task, completed=step.done, info=step.info,
                                 left=f"~{format_seconds(left)} left" if math.isfinite(left)
                                 else "")

    def end(self, step: Step) -> None:
        task = self._tasks.pop(id(step), None)
        if task is not None:
            self.progress.remove_task(task)
        if not self._tasks:
            self.progress.stop()


def command_line_sink(terminal: bool | None = None) -> Sink:
    """The terminal's bars, or plain lines when stdout is not a terminal."""
    terminal = sys.stdout.isatty() if terminal is None else terminal
    return TerminalSink() if terminal else PlainSink(plain_interval())
