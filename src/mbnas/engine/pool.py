"""Many runs per device without Ray: a local pool of worker processes.

``--runs-per-device N`` starts N worker processes on this machine. Each receives the
run context (the preprocessed slices and the folds) once, when it starts, and keeps it
resident, so a run costs only its training. Each worker uses the same device (all on
one GPU, or on the CPU) and ``threads`` CPU threads; as in the in-process executor the
thread count is what makes results repeat bit for bit, so a pool and sequential
training with equal ``--threads`` store identical rows (tested).

Each worker has its own pipe and runs one job at a time, so a worker that dies (killed,
out of memory) is known with its job: it is restarted, and the job retried, up to
``max_retries`` times, as the Ray executor does; after that its runs are failed records.
With ``fuse`` the runs of one architecture and fold are trained as one fused network
(``mbnas.engine.fused``).
"""

from __future__ import annotations

import contextlib
import multiprocessing
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any

import torch

from mbnas.engine.fused import execute_group, fusable_groups
from mbnas.engine.runs import RunContext, RunHooks, RunSpec, failed_record, utc_now
from mbnas.engine.train import EpochStats
from mbnas.store import RunRecord


def _worker_main(conn: Connection, ctx: RunContext, threads: int, fuse: bool) -> None:
    """A worker: keep the run context, train each job it is sent, send back the records."""
    torch.set_num_threads(threads)
    while True:
        job = conn.recv()
        if job is None:
            return
        conn.send(_execute(job, ctx, fuse))


def _execute(job: list[RunSpec], ctx: RunContext, fuse: bool,
             on_epoch: Any = None) -> list[RunRecord]:
    if fuse:
        return execute_group(job, ctx, on_epoch)
    return [r for spec in job for r in execute_group([spec], ctx, on_epoch)]


@dataclass
class _Worker:
    process: Any
    conn: Connection
    job: tuple[int, list[RunSpec]] | None = None


@dataclass
class LocalPoolExecutor:
    """Trains up to ``runs_per_device`` jobs at once in worker processes on this machine.

    Args:
        runs_per_device: Worker processes (1: train in this process, no workers).
        threads: CPU threads of each worker (None: the usable CPUs, see
            :mod:`mbnas.engine.cpus`, divided among the workers).
        fuse: Train the seeds of one architecture and fold as one fused network.
        max_retries: Restarts of a run whose worker died, before it is a failed record.
    """

    runs_per_device: int = 2
    threads: int | None = None
    fuse: bool = False
    max_retries: int = 2
    name: str = field(default="pool", init=False)
    _workers: list[_Worker] = field(default_factory=list, init=False, repr=False)

    def start(self) -> None:
        """Nothing to start: workers are spawned per batch, with the batch's run context."""

    def close(self) -> None:
        """Nothing to release: each batch ends its workers."""

    def worker_threads(self) -> int:
        if self.threads is not None:
            return self.threads
        from mbnas.engine.cpus import default_threads

        return default_threads(self.runs_per_device)

    def worker_pids(self) -> list[int]:
        """Process ids of the live workers (for monitoring, and the crash test)."""
        return [w.process.pid for w in self._workers if w.process.pid is not None]

    def jobs(self, specs: Sequence[RunSpec]) -> list[list[RunSpec]]:
        return fusable_groups(specs) if self.fuse else [[s] for s in specs]

    def run(self, specs: Sequence[RunSpec], ctx: RunContext,
            hooks: RunHooks | None = None) -> Iterator[RunRecord]:
        if self.runs_per_device <= 1:
            yield from self._in_process(specs, ctx, hooks)
        else:
            yield from self._pooled(specs, ctx, hooks)

    def _in_process(self, specs: Sequence[RunSpec], ctx: RunContext,
                    hooks: RunHooks | None) -> Iterator[RunRecord]:
        before = torch.get_num_threads()
        try:
            torch.set_num_threads(self.worker_threads())
            for job in self.jobs(specs):
                for spec in job:
                    if hooks is not None:
                        hooks.run_started(spec)
                on_epoch = None if hooks is None else hooks.epoch_done
                yield from _execute(job, ctx, self.fuse, on_epoch)
        finally:
            torch.set_num_threads(before)

    def _spawn(self, ctx: RunContext) -> _Worker:
        # spawn, not fork: a forked copy of a process with OpenMP or CUDA state can hang.
        # One pipe per worker (no shared queue), so a killed worker blocks no other.
        mp = multiprocessing.get_context("spawn")
        parent, child = mp.Pipe()
        process = mp.Process(target=_worker_main, daemon=True,
                             args=(child, ctx, self.worker_threads(), self.fuse))
        process.start()
        child.close()
        return _Worker(process, parent)

    def _pooled(self, specs: Sequence[RunSpec], ctx: RunContext,
                hooks: RunHooks | None) -> Iterator[RunRecord]:
        waiting = [(i, job) for i, job in enumerate(self.jobs(specs))]
        attempts: dict[int, int] = {}
        self._workers = [self._spawn(ctx) for _ in range(min(self.runs_per_device,
                                                              len(waiting)))]
        try:
            while waiting or any(w.job is not None for w in self._workers):
                for worker in self._workers:
                    if worker.job is None and waiting:
                        worker.job = waiting.pop(0)
                        worker.conn.send(worker.job[1])
                        for spec in worker.job[1]:
                            if hooks is not None:
                                hooks.run_started(spec)
                busy = [w for w in self._workers if w.job is not None]
                ready = set(wait([w.conn for w in busy] + [w.process.sentinel for w in busy]))
                for i, worker in enumerate(self._workers):
                    if worker.job is None:
                        continue
                    job_id, job = worker.job
                    if worker.conn in ready:
                        try:
                            records = worker.conn.recv()
                        except (EOFError, OSError):
                            records = None  # died while sending: retried below
                        if records is not None:
                            worker.job = None
                            for record in records:
                                _replay_epochs(hooks, job, record)
                                yield record
                            continue
                    if worker.conn in ready or worker.process.sentinel in ready:
                        # The worker died: restart it and retry its job.
                        worker.process.join(timeout=5)
                        worker.conn.close()
                        attempts[job_id] = attempts.get(job_id, 0) + 1
                        if attempts[job_id] > self.max_retries:
                            yield from self._given_up(job, ctx, attempts[job_id])
                        else:
                            waiting.insert(0, (job_id, job))
                        self._workers[i] = self._spawn(ctx)
        finally:
            for worker in self._workers:
                with contextlib.suppress(OSError, BrokenPipeError):
                    worker.conn.send(None)
            for worker in self._workers:
                worker.process.join(timeout=10)
                if worker.process.is_alive():
                    worker.process.kill()
                worker.conn.close()
            self._workers = []

    def _given_up(self, job: list[RunSpec], ctx: RunContext, tries: int
                  ) -> Iterator[RunRecord]:
        for spec in job:
            yield failed_record(spec, ctx, f"worker process died {tries} times running "
                                f"{spec.label}; gave up after {self.max_retries} retries",
                                utc_now(), 0.0)


def _replay_epochs(hooks: RunHooks | None, job: list[RunSpec], record: RunRecord) -> None:
    """Workers do not stream epochs: tell the hooks a finished run's epochs at its end."""
    if hooks is None:
        return
    spec = next(s for s in job if s.seed == record.seed and s.fold == record.fold)
    for entry in record.curve:
        hooks.epoch_done(spec, EpochStats(**entry))


__all__ = ["LocalPoolExecutor"]
