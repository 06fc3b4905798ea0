"""Live progress on the terminal (rich): evaluations, scores, the run being trained, time left."""

from __future__ import annotations

import math
import sys
import time
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from mbnas.progress import format_seconds, stamp
from mbnas.training.runs import RunSpec
from mbnas.training.train import EpochStats


class SearchProgress:
    """Run hooks + evaluation callback that draw a two-line live display.

    Line 1: evaluations done / budget, current and best score, time per evaluation and
    the estimated time left. Line 2: the architecture, fold, seed and epoch being trained.
    """

    def __init__(self, budget: int, console: Console | None = None,
                 plain: bool | None = None) -> None:
        self.console = console or Console(stderr=True)
        self.budget = budget
        # Not a terminal (sbatch, nohup, a pipe): plain lines instead of the live display.
        self.plain = (not sys.stdout.isatty()) if plain is None else plain
        self._last_line = -math.inf
        self.progress = Progress(
            TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(), console=self.console, transient=False,
        )
        self.search_task = self.progress.add_task("evaluations", total=budget, info="")
        self.run_task = self.progress.add_task("training", total=1, info="")
        self.started = time.perf_counter()
        self.trained_seconds: list[float] = []
        self._shown = False

    def __enter__(self) -> SearchProgress:
        return self  # the display appears with the first run: a refusal stays one line

    def __exit__(self, *exc: object) -> None:
        if self._shown:
            self.progress.stop()

    def _show(self) -> None:
        if not self._shown and not self.plain:
            self._shown = True
            self.progress.start()

    def _line(self, text: str, every: float = 0.0) -> None:
        """Plain mode: print a timestamped line, at most once per ``every`` seconds."""
        now = time.monotonic()
        if self.plain and now - self._last_line >= every:
            self._last_line = now
            stamp(text)

    # RunHooks
    def run_started(self, spec: RunSpec) -> None:
        self._show()
        self.progress.update(
            self.run_task, completed=0, total=spec.protocol.epochs,
            description=f"arch {spec.arch_key[:8]}",
            info=f"fold {spec.fold} seed {spec.seed}",
        )

    def epoch_done(self, spec: RunSpec, stats: EpochStats) -> None:
        self._line(f"training arch {spec.arch_key[:8]} fold {spec.fold} seed {spec.seed} "
                   f"epoch {stats.epoch + 1}/{spec.protocol.epochs} loss {stats.loss:.3f} "
                   f"val Dice {stats.val_dice:.3f}", every=60.0)
        self.progress.update(
            self.run_task, completed=stats.epoch + 1,
            info=(f"fold {spec.fold} seed {spec.seed} epoch {stats.epoch + 1}/"
                  f"{spec.protocol.epochs} loss {stats.loss:.3f} val Dice {stats.val_dice:.3f}"),
        )

    # called by the driver after each tell
    def evaluation_done(self, strategy: Any, results: list[Any]) -> None:
        self._show()
        for r in results:
            if r.n_trained:
                self.trained_seconds.append(r.seconds)
        done = strategy.n_evaluated
        per_eval = (sum(self.trained_seconds) / len(self.trained_seconds)
                    if self.trained_seconds else math.nan)
        left = per_eval * max(self.budget - done, 0)
        best = strategy.best[1] if strategy.best is not None else None
        current = results[-1].score if results else math.nan
        info = (f"{done}/{self.budget}  current {current:.4f}  best "
                f"{best if best is None else f'{best:.4f}'}  "
                f"{format_seconds(per_eval)}/eval  ~{format_seconds(left)} left")
        self.progress.update(self.search_task, completed=min(done, self.budget), info=info)
        if self.plain:  # one line per evaluation of the batch, always printed
            first = done - len(results) + 1
            for i, r in enumerate(results):
                self._last_line = -math.inf
                self._line(f"evaluation {first + i}/{self.budget}  score {r.score:.4f}  best "
                           f"{best if best is None else f'{best:.4f}'}  arch {r.arch_key[:8]}"
                           f"  ~{format_seconds(left)} left")
