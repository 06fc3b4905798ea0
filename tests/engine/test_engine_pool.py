"""The local worker pool: same store rows as sequential training, and dead workers retried."""

from __future__ import annotations

import dataclasses
import os
import signal

from mbnas.data.slices import SliceData
from mbnas.engine.config import Protocol
from mbnas.engine.evaluator import Evaluator
from mbnas.engine.executors import make_executor
from mbnas.engine.pool import LocalPoolExecutor
from mbnas.engine.runs import InProcessExecutor, RunContext, RunSpec
from mbnas.space import preset
from mbnas.store import ResultStore


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
