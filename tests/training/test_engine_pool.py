"""The local worker pool: same store rows as sequential training, and dead workers retried."""

from __future__ import annotations

import dataclasses
import os
import pickle
import signal
from collections.abc import Sequence

import pytest

from mbnas.data.slices import SliceData
from mbnas.scoring.train import Evaluator
from mbnas.spaces.mbnas import preset
from mbnas.store import ResultStore
from mbnas.training.executors import make_executor
from mbnas.training.pool import LocalPoolExecutor, WorkerProcess, WorkerStartFailure
from mbnas.training.protocol import Protocol
from mbnas.training.runs import InProcessExecutor, RunContext, RunSpec


def _folds(data: SliceData) -> tuple[tuple[str, ...], ...]:
    ids = data.case_ids
    return (ids[::2], ids[1::2])


def _rows(store: ResultStore) -> list[tuple]:
    return sorted((r.arch_key, r.fold, r.seed, r.status, r.score,
                   [(e["loss"], e["val_dice"]) for e in r.curve], r.metrics["case_dice"])
                  for r in store.runs())


def test_two_runs_per_device_store_the_same_rows(phantom_slices: SliceData,
                                                 tiny_protocol: Protocol, tmp_path) -> None:
    protocol = dataclasses.replace(tiny_protocol, epochs=1)
    ctx = RunContext(phantom_slices, _folds(phantom_slices), "cpu")
    archs = [preset("unet")]
    rows = []
    for name, executor in (("seq", InProcessExecutor(threads=1)),
                           ("pool", make_executor("inprocess", threads=1, runs_per_device=2))):
        with ResultStore(tmp_path / f"{name}.sqlite") as store:
            Evaluator(ctx, protocol, store, executor).evaluate_many(archs)
            rows.append(_rows(store))
    assert len(rows[0]) == protocol.folds and rows[0] == rows[1]


class _KillFirstWorker:
    """Hooks that kill a worker process once, while the first runs are in flight."""

    def __init__(self, executor: LocalPoolExecutor) -> None:
        self.executor, self.killed, self.started = executor, False, 0

    def run_started(self, spec: RunSpec) -> None:
        self.started += 1
        pids = self.executor.worker_pids()
        if not self.killed and self.started == 2 and pids:
            os.kill(pids[0], signal.SIGKILL)
            self.killed = True

    def epoch_done(self, spec: RunSpec, stats: object) -> None:
        pass


def test_dead_worker_is_restarted_and_its_run_retried(phantom_slices: SliceData,
                                                     tiny_protocol: Protocol) -> None:
    protocol = dataclasses.replace(tiny_protocol, epochs=1)
    ctx = RunContext(phantom_slices, _folds(phantom_slices), "cpu")
    arch = preset("unet")
    specs = [RunSpec(arch.to_dict(), arch.key, f, 0, protocol) for f in (0, 1)]
    executor = LocalPoolExecutor(runs_per_device=2, threads=1)
    hooks = _KillFirstWorker(executor)
    records = list(executor.run(specs, ctx, hooks))
    assert hooks.killed
    assert sorted((r.fold, r.status) for r in records) == [(0, "finished"), (1, "finished")]
    assert hooks.started > len(specs)  # the runs in flight were started again


class _DyingWorker(WorkerProcess):
    """A worker process that SIGKILLs itself at one moment of its life (a test double of
    the worker's body only: the pool, the pipes and the context transfer are the real ones).
    """

    def __init__(self, threads: int, fuse: bool, moment: str) -> None:
        super().__init__(threads, fuse)
        self.moment = moment

    def _die(self, moment: str) -> None:
        if moment == self.moment:
            os.kill(os.getpid(), signal.SIGKILL)

    def main(self, conn) -> None:
        self._die("starting")
        super().main(conn)

    def receive_context(self, conn):
        self._die("before the context")
        if self.moment == "receiving the context":
            os.read(conn.fileno(), 4096)  # the first bytes of it; the parent is mid-send
            self._die("receiving the context")
        ctx = super().receive_context(conn)
        self._die("holding the context")
        return ctx

    def report(self, conn, records) -> None:
        super().report(conn, records)
        self._die("after reporting")


# The moments of a worker's life it dies at here, in order: four of its start-up, and
# after it has reported (a death mid-run: test_dead_worker_is_restarted_and_its_run_retried).
MOMENTS = ("starting", "before the context", "receiving the context", "holding the context",
           "after reporting")


class _KillingPool(LocalPoolExecutor):
    """A pool whose successive workers die at the given moments, then live."""

    def __init__(self, moments: Sequence[str], **kwargs) -> None:
        super().__init__(**kwargs)
        self.schedule = list(moments)

    def make_worker(self) -> WorkerProcess:
        if self.schedule:
            return _DyingWorker(self.worker_threads(), self.fuse, self.schedule.pop(0))
        return super().make_worker()


def test_workers_killed_at_every_start_up_moment_give_the_in_process_scores(
        phantom_slices: SliceData, tiny_protocol: Protocol, tmp_path) -> None:
    protocol = dataclasses.replace(tiny_protocol, epochs=1)
    ctx = RunContext(phantom_slices, _folds(phantom_slices), "cpu")
    archs = [preset("unet")]
    # Enough slices that the context is larger than a pipe's buffer: the parent is still
    # sending when the worker dies mid-transfer (once it blocked the parent forever).
    assert len(pickle.dumps(ctx)) > 1 << 18
    pool = _KillingPool(MOMENTS, runs_per_device=2, threads=1, max_retries=len(MOMENTS),
                        max_start_failures=len(MOMENTS))
    rows = []
    for name, executor in (("in-process", InProcessExecutor(threads=1)), ("pool", pool)):
        with ResultStore(tmp_path / f"{name}.sqlite") as store:
            Evaluator(ctx, protocol, store, executor).evaluate_many(archs)
            rows.append(_rows(store))
    assert pool.schedule == []  # every moment was reached, and its worker died there
    assert rows[1] == rows[0] and all(r[3] == "finished" for r in rows[1])


def test_workers_that_keep_dying_at_start_up_stop_with_one_line(
        phantom_slices: SliceData, tiny_protocol: Protocol) -> None:
    ctx = RunContext(phantom_slices, _folds(phantom_slices), "cpu")
    arch = preset("unet")
    specs = [RunSpec(arch.to_dict(), arch.key, f, 0, tiny_protocol) for f in (0, 1)]
    pool = _KillingPool(["before the context"] * 10, runs_per_device=2, threads=1,
                        max_start_failures=1)
    with pytest.raises(WorkerStartFailure, match="2 times in a row.*signal 9") as info:
        list(pool.run(specs, ctx))
    assert "\n" not in str(info.value) and pool.worker_pids() == []
