"""Progress of the long steps that are not training: preprocessing, metrics, estimates,
export and report. The one owner of how such a step tells the user how far it is.

A step is written as::

    with track("metrics on the original grid", total=len(cases), unit="case") as step:
        for case in cases:
            ...
            step.advance(info=case.case_id)

Who sees what depends on the *sink* in force (:func:`use_sink`, a context variable):

* the default, for the Python API and notebooks: log records on the ``mbnas.progress``
  logger at INFO (start, at most one line each :data:`LOG_EVERY` seconds, end), so
  ``logging.basicConfig(level="INFO")`` shows them;
* :class:`CallbackSink`: a function called with the :class:`Step` on every change
  (``mbnas.progress.use_sink(CallbackSink(fn))``);
* the command line's (``mbnas.cli.steps``): a bar with the time left in a terminal, and
  outside one (sbatch, nohup, a pipe) a timestamped line once a minute.

This module imports nothing heavy, so every layer may use it.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

T = TypeVar("T")

__all__ = ["CallbackSink", "LogSink", "Sink", "Step", "current_sink", "format_seconds",
           "stamp", "track", "use_sink"]

#: Seconds between two progress records of one step on the logger.
LOG_EVERY = 10.0


@dataclass
class Step:
    """One long step: what it is, how many items it has and how many are done."""

    name: str
    total: int | None = None
    unit: str = "item"
    done: int = 0
    info: str = ""
    started: float = field(default_factory=time.monotonic)
    finished: bool = False
    stopped: bool = False  # ended by an error or an interrupt
    sink: Sink | None = field(default=None, repr=False, compare=False)  # shown there

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    @property
    def seconds_left(self) -> float:
        """Seconds left at the rate so far (NaN before the first item or without a total)."""
        if not self.total or self.done <= 0:
            return math.nan
        return self.elapsed / self.done * max(self.total - self.done, 0)

    def advance(self, n: int = 1, info: str = "") -> None:
        """``n`` more items are done; ``info`` names the last one."""
        self.done += n
        self.info = info
        (self.sink or current_sink()).update(self)

    def each(self, items: Iterable[T], name: Callable[[T], str] = str) -> Iterator[T]:
        """Yield the items, advancing once each item's work is done (when the next one is
        asked for, also after a ``continue``)."""
        for item in items:
            yield item
            self.advance(info=name(item))

    def describe(self) -> str:
        """``name: 3/10 cases (last: lung2), 0m40s so far, ~1m20s left``."""
        count = (f"{self.done}/{self.total}" if self.total is not None else str(self.done))
        units = self.unit if self.total == 1 else f"{self.unit}s"
        text = f"{self.name}: {count} {units}"
        if self.info:
            text += f" (last: {self.info})"
        if self.finished:
            verb = "stopped after" if self.stopped else "done in"
            return f"{text}, {verb} {format_seconds(self.elapsed)}"
        text += f", {format_seconds(self.elapsed)} so far"
        left = self.seconds_left
        return text + (f", ~{format_seconds(left)} left" if math.isfinite(left) else "")


class Sink(Protocol):
    """Where steps are shown: told when a step begins, advances and ends."""

    def begin(self, step: Step) -> None: ...
    def update(self, step: Step) -> None: ...
    def end(self, step: Step) -> None: ...


class LogSink:
    """Steps as log records (logger ``mbnas.progress``, INFO): begin, end, and in between
    at most one record each ``every`` seconds."""

    def __init__(self, logger: str = "mbnas.progress", every: float = LOG_EVERY) -> None:
        self.log = logging.getLogger(logger)
        self.every = every
        self._last: dict[int, float] = {}

    def begin(self, step: Step) -> None:
        self._last[id(step)] = time.monotonic()
        total = f" ({step.total} {step.unit}s)" if step.total is not None else ""
        self.log.info("%s: started%s", step.name, total)

    def update(self, step: Step) -> None:
        now = time.monotonic()
        if now - self._last.get(id(step), -math.inf) >= self.every:
            self._last[id(step)] = now
            self.log.info("%s", step.describe())

    def end(self, step: Step) -> None:
        self._last.pop(id(step), None)
        self.log.info("%s", step.describe())


class CallbackSink:
    """Calls ``callback(step)`` when a step begins, on every advance, and when it ends
    (then ``step.finished`` is True)."""

    def __init__(self, callback: Callable[[Step], None]) -> None:
        self.callback = callback

    def begin(self, step: Step) -> None:
        self.callback(step)

    update = end = begin


_sink: ContextVar[Sink | None] = ContextVar("mbnas_progress_sink", default=None)
_DEFAULT = LogSink()


def current_sink() -> Sink:
    """The sink of :func:`use_sink` in force, else the logger's."""
    return _sink.get() or _DEFAULT


@contextmanager
def use_sink(sink: Sink) -> Iterator[Sink]:
    """Show the steps started inside the ``with`` block on ``sink``."""
    token = _sink.set(sink)
    try:
        yield sink
    finally:
        _sink.reset(token)


@contextmanager
def track(name: str, total: int | None = None, unit: str = "item") -> Iterator[Step]:
    """A long step shown on the current sink; it ends (also on an error) with the block."""
    sink = current_sink()
    step = Step(name, total, unit, sink=sink)
    sink.begin(step)
    try:
        yield step
    except BaseException:
        step.stopped = True
        raise
    finally:
        step.finished = True
        sink.end(step)


def stamp(text: str) -> None:
    """Print one timestamped progress line on stdout at once (the plain, non-terminal form
    of every progress display). One write, so a line from the heartbeat thread never
    splits another."""
    sys.stdout.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {text}\n")
    sys.stdout.flush()


def format_seconds(s: float) -> str:
    """``1h02m``, ``3m05s`` or ``?`` (not finite)."""
    if not math.isfinite(s):
        return "?"
    h, rem = divmod(int(s), 3600)
    m, sec = divmod(rem, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{sec:02d}s"
