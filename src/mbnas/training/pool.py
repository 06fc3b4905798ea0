"""Many runs per device without Ray: a local pool of worker processes.

``--runs-per-device N`` starts N worker processes on this machine. Each receives the
run context (the preprocessed slices and the folds) once, when it starts, and keeps it
resident, so a run costs only its training. Each worker uses the same device (all on
one GPU, or on the CPU) and ``threads`` CPU threads; as in the in-process executor the
thread count is what makes results repeat bit for bit, so a pool and sequential
training with equal ``--threads`` store identical rows (tested).

Start-up never blocks the parent. A worker is spawned with only its settings; once it is
up it says so, and the run context (pickled once per batch) is sent to it by a sender
thread, so a worker that dies while receiving it (or hangs) costs the parent nothing: the
main loop watches every worker's pipe and process sentinel, with a deadline
(``startup_timeout``) for each start-up step. Python's own spawn argument pipe is not used
for the context: the parent holds that pipe's read end open until it has written
everything, so a child killed during the transfer used to block ``Process.start`` forever.

Each worker has its own pipe and runs one job at a time, so a worker that dies at any
moment (while starting, while receiving the context, mid-run, after reporting) is known
with its job: it is restarted, and the job retried, up to ``max_retries`` times, as the Ray
executor does; after that its runs are failed records. Workers that keep dying before they
are ready (``max_start_failures`` in a row) are an environment failure:
:class:`WorkerStartFailure`, one line. With ``fuse`` the runs of one architecture and fold
are trained as one fused network (``mbnas.training.fused``).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import pickle
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any

import torch

from mbnas.store import RunRecord
from mbnas.training.failures import RunFailure
from mbnas.training.fused import execute_group, fusable_groups
from mbnas.training.runs import RunContext, RunHooks, RunSpec, failed_record, utc_now
from mbnas.training.train import EpochStats

# Messages a worker sends: it is up, it holds the context, a job's records.
UP, READY, RECORDS = "up", "ready", "records"


class WorkerStartFailure(RunFailure):
    """The pool's workers keep dying before they are ready: the machine, not a network."""


class WorkerProcess:
    """What a worker process does, step by step (picklable; sent to the spawned process).

    Args:
        threads: CPU threads of the worker's training.
        fuse: Train the seeds of one architecture and fold as one fused network.
    """

    def __init__(self, threads: int, fuse: bool) -> None:
        self.threads, self.fuse = threads, fuse

    def main(self, conn: Connection) -> None:
        """Say it is up, take the run context, then train each job it is sent."""
        torch.set_num_threads(self.threads)
        conn.send((UP, os.getpid()))
        ctx = self.receive_context(conn)
        conn.send((READY, None))
        while True:
            job = self.receive_job(conn)
            if job is None:
                return
            self.report(conn, _execute(job, ctx, self.fuse))

    def receive_context(self, conn: Connection) -> RunContext:
        return pickle.loads(conn.recv_bytes())

    def receive_job(self, conn: Connection) -> list[RunSpec] | None:
        return conn.recv()

    def report(self, conn: Connection, records: list[RunRecord]) -> None:
        conn.send((RECORDS, records))


def _worker_entry(worker: WorkerProcess, conn: Connection) -> None:
    worker.main(conn)


def _execute(job: list[RunSpec], ctx: RunContext, fuse: bool,
             on_epoch: Any = None) -> list[RunRecord]:
    if fuse:
        return execute_group(job, ctx, on_epoch)
    return [r for spec in job for r in execute_group([spec], ctx, on_epoch)]


def _send_context(conn: Connection, payload: bytes) -> None:
    # A worker that dies while receiving breaks the pipe: the main loop sees its death.
    with contextlib.suppress(OSError, ValueError):
        conn.send_bytes(payload)


@dataclass
class _Worker:
    process: Any
    conn: Connection
    deadline: float
    ready: bool = False
    sender: threading.Thread | None = None
    job: tuple[int, list[RunSpec]] | None = None


@dataclass
class LocalPoolExecutor:
    """Trains up to ``runs_per_device`` jobs at once in worker processes on this machine.

    Args:
        runs_per_device: Worker processes (1: train in this process, no workers).
        threads: CPU threads of each worker (None: the usable CPUs, see
            :mod:`mbnas.training.cpus`, divided among the workers).
        fuse: Train the seeds of one architecture and fold as one fused network.
        fuse_folds: Fuse all folds and seeds of one architecture (each member on its own
            fold's slices; ``mbnas.training.fused``); implies ``fuse``.
        max_retries: Restarts of a run whose worker died, before it is a failed record.
        startup_timeout: Seconds a worker may take to come up, and then to take the run
            context; a worker that takes longer is killed and started again.
        max_start_failures: Workers in a row that may die (or time out) before any is
            ready, before the batch stops with :class:`WorkerStartFailure`.
    """

    runs_per_device: int = 2
    threads: int | None = None
    fuse: bool = False
    max_retries: int = 2
    fuse_folds: bool = False
    startup_timeout: float = 600.0
    max_start_failures: int = 3
    name: str = field(default="pool", init=False)
    _workers: list[_Worker] = field(default_factory=list, init=False, repr=False)

    def start(self) -> None:
        """Nothing to start: workers are spawned per batch, with the batch's run context."""

    def close(self) -> None:
        """Nothing to release: each batch ends its workers."""

    def worker_threads(self) -> int:
        if self.threads is not None:
            return self.threads
        from mbnas.training.cpus import default_threads

        return default_threads(self.runs_per_device)

    def worker_pids(self) -> list[int]:
        """Process ids of the live workers (for monitoring, and the crash test)."""
        return [w.process.pid for w in self._workers if w.process.pid is not None]

    def make_worker(self) -> WorkerProcess:
        """The body of the next worker process."""
        return WorkerProcess(self.worker_threads(), self.fuse or self.fuse_folds)

    def jobs(self, specs: Sequence[RunSpec]) -> list[list[RunSpec]]:
        if self.fuse or self.fuse_folds:
            return fusable_groups(specs, folds=self.fuse_folds)
        return [[s] for s in specs]

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
                yield from _execute(job, ctx, self.fuse or self.fuse_folds, on_epoch)
        finally:
            torch.set_num_threads(before)

    def _spawn(self) -> _Worker:
        # spawn, not fork: a forked copy of a process with OpenMP or CUDA state can hang.
        # One pipe per worker (no shared queue), so a killed worker blocks no other. Only
        # the small worker settings go through spawn's own pipe; the context follows later.
        mp = multiprocessing.get_context("spawn")
        parent, child = mp.Pipe()
        process = mp.Process(target=_worker_entry, daemon=True,
                             args=(self.make_worker(), child))
        process.start()
        child.close()
        return _Worker(process, parent, time.monotonic() + self.startup_timeout)

    def _bury(self, worker: _Worker) -> None:
        """End a dead (or late) worker and free its pipe; its sender thread ends with it."""
        if worker.process.is_alive():
            worker.process.kill()
        worker.process.join(timeout=10)
        if worker.sender is not None:
            worker.sender.join(timeout=10)
        worker.conn.close()

    def _pooled(self, specs: Sequence[RunSpec], ctx: RunContext,
                hooks: RunHooks | None) -> Iterator[RunRecord]:
        waiting = [(i, job) for i, job in enumerate(self.jobs(specs))]
        attempts: dict[int, int] = {}
        start_failures = 0
        payload = pickle.dumps(ctx, protocol=pickle.HIGHEST_PROTOCOL)
        self._workers = [self._spawn() for _ in range(min(self.runs_per_device,
                                                          len(waiting)))]
        try:
            while waiting or any(w.job is not None for w in self._workers):
                for worker in self._workers:
                    if worker.ready and worker.job is None and waiting:
                        worker.job = waiting.pop(0)
                        with contextlib.suppress(OSError, ValueError):  # died: seen below
                            worker.conn.send(worker.job[1])
                        for spec in worker.job[1]:
                            if hooks is not None:
                                hooks.run_started(spec)
                watched = [w for w in self._workers if not w.ready or w.job is not None]
                starting = [w.deadline for w in watched if not w.ready]
                timeout = max(0.0, min(starting) - time.monotonic()) if starting else None
                ready = set(wait([w.conn for w in watched]
                                 + [w.process.sentinel for w in watched], timeout))
                for i, worker in enumerate(list(self._workers)):
                    if worker not in watched:
                        continue
                    message = None
                    if worker.conn in ready:
                        try:
                            message = worker.conn.recv()
                        except (EOFError, OSError):
                            message = None  # died while sending: handled below
                    if message is not None:
                        kind, value = message
                        if kind == UP:  # now the context; a new deadline for taking it
                            worker.deadline = time.monotonic() + self.startup_timeout
                            worker.sender = threading.Thread(
                                target=_send_context, args=(worker.conn, payload),
                                daemon=True, name="mbnas-pool-context")
                            worker.sender.start()
                        elif kind == READY:
                            worker.ready, start_failures = True, 0
                        elif kind == RECORDS and worker.job is not None:
                            job = worker.job[1]
                            worker.job = None
                            for record in value:
                                _replay_epochs(hooks, job, record)
                                yield record
                        continue
                    died = worker.conn in ready or worker.process.sentinel in ready
                    late = not worker.ready and time.monotonic() > worker.deadline
                    if not (died or late):
                        continue
                    self._bury(worker)
                    if worker.job is not None:
                        job_id, job = worker.job
                        attempts[job_id] = attempts.get(job_id, 0) + 1
                        if attempts[job_id] > self.max_retries:
                            yield from self._given_up(job, ctx, attempts[job_id])
                        else:
                            waiting.insert(0, (job_id, job))
                    elif not worker.ready:
                        start_failures += 1
                        if start_failures > self.max_start_failures:
                            raise WorkerStartFailure(_start_failure(worker, start_failures,
                                                                    late, self))
                    self._workers[i] = self._spawn()
        finally:
            self._stop_workers()

    def _stop_workers(self) -> None:
        for worker in self._workers:
            if worker.ready:
                with contextlib.suppress(OSError, BrokenPipeError):
                    worker.conn.send(None)
        for worker in self._workers:
            worker.process.join(timeout=10 if worker.ready else 0)
            self._bury(worker)
        self._workers = []

    def _given_up(self, job: list[RunSpec], ctx: RunContext, tries: int
                  ) -> Iterator[RunRecord]:
        for spec in job:
            yield failed_record(spec, ctx, f"worker process died {tries} times running "
                                f"{spec.label}; gave up after {self.max_retries} retries",
                                utc_now(), 0.0)


def _start_failure(worker: _Worker, count: int, late: bool, pool: LocalPoolExecutor) -> str:
    code = worker.process.exitcode
    how = (f"did not start within {pool.startup_timeout:.0f} s" if late
           else f"exited with code {code}" if code is not None and code >= 0
           else f"was killed by signal {-code}" if code is not None else "died")
    return (f"the pool's worker processes died {count} times in a row before they were "
            f"ready (the last {how}); the machine cannot start them (memory, process "
            "limits?): fix that, or run with --runs-per-device 1, then resume")


def _replay_epochs(hooks: RunHooks | None, job: list[RunSpec], record: RunRecord) -> None:
    """Workers do not stream epochs: tell the hooks a finished run's epochs at its end."""
    if hooks is None:
        return
    spec = next(s for s in job if s.seed == record.seed and s.fold == record.fold)
    for entry in record.curve:
        hooks.epoch_done(spec, EpochStats(**entry))


__all__ = ["LocalPoolExecutor", "WorkerProcess", "WorkerStartFailure"]
