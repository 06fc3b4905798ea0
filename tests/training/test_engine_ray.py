"""The Ray executor on a real local Ray instance with 2 CPUs (started once for this module).

Every search here is the same tiny one (spleen phantom, 32 px, 2 folds, 1 seed, 1 epoch,
base_channels 4, budget 3): 3 evaluations of one architecture each, 6 runs. The reference
is that search run in this process with one torch thread, which is what a Ray run with
``cpus_per_run=1`` uses; so the Ray searches must match it bit for bit.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

ray = pytest.importorskip("ray")

from mbnas.commands.search.run import SearchConfig, run_search  # noqa: E402
from mbnas.data import make_phantom  # noqa: E402
from mbnas.errors import ConfigError  # noqa: E402
from mbnas.spaces.mbnas import preset  # noqa: E402
from mbnas.store import ResultStore, StoreError, load_weights  # noqa: E402
from mbnas.training.protocol import get_protocol  # noqa: E402
from mbnas.training.ray_executor import (  # noqa: E402
    RayExecutor,
    check_address,
    train_on_worker,
)
from mbnas.training.runs import RunContext, RunSpec, execute_run  # noqa: E402
from mbnas.training.train import EpochStats  # noqa: E402

PROTOCOL = dict(epochs=1, folds=2, image_size=32, base_channels=4)
BUDGET, RUNS = 3, 6  # 3 evaluations x 2 folds x 1 seed


def faulty_train(spec: RunSpec, ctx: RunContext, threads: int, use_gpu: bool,
                 crash_marker: str | None, fail_run: str | None) -> Any:
    """A Ray task that fails on purpose, then trains as usual.

    ``crash_marker``: the first run to start creates this file and kills its own worker
    process (``os._exit``), as a crashed node would; runs that find the file train.
    ``fail_run`` ("ARCH_KEY:FOLD"): that run raises after its (first) epoch, inside the run.
    """
    if crash_marker:
        try:
            os.close(os.open(crash_marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            os._exit(1)
        except FileExistsError:
            pass
    on_epoch = None
    if fail_run == f"{spec.arch_key}:{spec.fold}":
        def on_epoch(stats: EpochStats) -> None:
            raise RuntimeError(f"fault injected into {fail_run}: run failed in epoch "
                               f"{stats.epoch}")
    return train_on_worker(spec, ctx, threads, use_gpu, on_epoch)


@dataclass
class FaultyRayExecutor(RayExecutor):
    """The Ray executor with faults injected into its tasks (tests only)."""

    crash_marker: str | None = None
    fail_run: str | None = None

    @property
    def task_body(self) -> Any:
        return faulty_train

    def task_arguments(self, spec: RunSpec) -> tuple[Any, ...]:
        return (self.crash_marker, self.fail_run)


@pytest.fixture(scope="module")
def cluster() -> Any:
    """A local Ray instance with 2 CPUs, started by the executor's own code.

    Its token comes from the environment, so nothing is written to ~/.ray; token
    authentication stays on (Ray's default for a local instance).
    """
    saved = {k: os.environ.get(k) for k in ("RAY_AUTH_TOKEN", "RAY_AUTH_MODE")}
    threads = torch.get_num_threads()
    os.environ["RAY_AUTH_TOKEN"] = secrets.token_hex(32)
    torch.set_num_threads(1)
    # Workers cannot import this test module: ship its functions (faulty_train) by value.
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    executor = RayExecutor(num_cpus=2)
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            executor.start()
        yield executor, err.getvalue()
    finally:
        executor.close()
        ray.cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
        torch.set_num_threads(threads)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("ray_data")
    data = make_phantom(root / "ph", "spleen", n_cases=6, seed=0, shape=(48, 48, 12))
    return data, root / "cache"


@pytest.fixture
def crash_once(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A crash marker for FaultyRayExecutor: the next run to start kills its worker."""
    return tmp_path_factory.mktemp("crash") / "crashed"


def search_config(dataset: tuple[Path, Path], executor: str = "inprocess") -> SearchConfig:
    data, cache = dataset
    return SearchConfig(
        data_dir=str(data), space="mbnas", strategy="local", budget=BUDGET, start="unet",
        cache_dir=str(cache), executor=executor, threads=1,  # a Ray run's 1 thread, in process too
        protocol=get_protocol("quick", **PROTOCOL),
    )


@pytest.fixture(scope="module")
def reference(cluster: Any, dataset: tuple[Path, Path],
              tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The search in this process, with one thread (the cluster fixture set it)."""
    out = tmp_path_factory.mktemp("reference") / "search"
    run_search(search_config(dataset), out)
    return out


def log_without_times(folder: Path) -> list[dict[str, Any]]:
    lines = (folder / "search_log.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k != "seconds"} for line in lines]


def runs_by_key(folder: Path) -> dict[tuple[str, int, int], Any]:
    with ResultStore(folder / "store.sqlite", read_only=True) as store:
        return {(r.arch_key, r.fold, r.seed): r for r in store.runs()}


def committed_runs(store: Path) -> int:
    """Runs in a store another process is writing; 0 while it is still being created."""
    try:
        with ResultStore(store, read_only=True) as reader:
            return len(reader.runs())
    except StoreError:
        return 0


def results(folder: Path) -> dict[tuple[str, int, int], tuple[Any, ...]]:
    """What a run computed: status, score and per-epoch loss and Dice (no times)."""
    return {
        key: (r.status, r.score, [(e["loss"], e["val_dice"], e["lr"]) for e in r.curve])
        for key, r in runs_by_key(folder).items()
    }


def assert_same_search(folder: Path, reference: Path) -> None:
    assert log_without_times(folder) == log_without_times(reference)
    assert results(folder) == results(reference)
    best, ref_best = (json.loads((f / "best.json").read_text()) for f in (folder, reference))
    assert best == ref_best


def test_dashboard_address_is_printed(cluster: Any) -> None:
    executor, printed = cluster
    assert executor.dashboard_url and executor.dashboard_url.startswith("http://")
    assert f"Ray dashboard: {executor.dashboard_url}" in printed


def test_ray_search_equals_inprocess_search(cluster: Any, dataset: Any, reference: Path,
                                            tmp_path: Path) -> None:
    executor = RayExecutor(cpus_per_run=1)
    out = tmp_path / "search"
    outcome = run_search(search_config(dataset, "ray"), out, executor=executor)
    assert outcome.n_evaluated == BUDGET
    assert len(runs_by_key(out)) == RUNS
    assert all(r.status == "finished" for r in runs_by_key(out).values())
    assert_same_search(out, reference)  # bitwise: same scores, losses and trajectory


def test_dataset_is_put_into_the_object_store_once(cluster: Any, dataset: Any) -> None:
    from mbnas.commands.common.dataset import training_data

    data = training_data(dataset[0], dataset[1], 32)
    ctx = RunContext(data, (data.case_ids[:3], data.case_ids[3:]), "cpu")
    executor = RayExecutor()
    executor.start()
    first = executor._context_ref(ctx)
    assert executor._context_ref(ctx) is first  # every batch and run share one object
    worker_view = ray.get(ray.remote(lambda c: c.data.images.flags.writeable).remote(first))
    assert worker_view is False  # workers map the arrays read-only from shared memory


def test_crashed_worker_is_retried(cluster: Any, dataset: Any, reference: Path,
                                   tmp_path: Path, crash_once: Path) -> None:
    out = tmp_path / "search"
    run_search(search_config(dataset, "ray"), out,
               executor=FaultyRayExecutor(max_retries=2, crash_marker=str(crash_once)))
    assert crash_once.exists()  # a worker did die mid-run
    runs = runs_by_key(out)
    assert len(runs) == RUNS and all(r.status == "finished" for r in runs.values())
    assert_same_search(out, reference)  # retried, not lost, not duplicated


def test_worker_dying_beyond_retries_is_a_failed_run(cluster: Any, dataset: Any,
                                                     crash_once: Path) -> None:
    from mbnas.commands.common.dataset import training_data

    data = training_data(dataset[0], dataset[1], 32)
    ctx = RunContext(data, (data.case_ids[:3], data.case_ids[3:]), "cpu")
    arch, protocol = preset("unet"), get_protocol("quick", **PROTOCOL)
    specs = [RunSpec(arch.to_dict(), arch.key, fold, 0, protocol) for fold in (0, 1)]
    records = list(FaultyRayExecutor(max_retries=0, crash_marker=str(crash_once)).run(specs, ctx))
    assert sorted(r.status for r in records) == ["failed", "finished"]
    failed = next(r for r in records if r.status == "failed")
    assert failed.error.startswith("Ray could not run it: ray.exceptions.WorkerCrashedError")


def test_run_raising_is_recorded_as_failed_and_search_goes_on(
        cluster: Any, dataset: Any, reference: Path, tmp_path: Path) -> None:
    second = log_without_times(reference)[1]["arch_key"]
    out = tmp_path / "search"
    with pytest.warns(RuntimeWarning, match=f"run {second} fold 1 seed 0 failed"):
        outcome = run_search(search_config(dataset, "ray"), out,
                             executor=FaultyRayExecutor(fail_run=f"{second}:1"))
    assert outcome.n_evaluated == BUDGET
    runs = runs_by_key(out)
    assert len(runs) == RUNS
    failed = [r for r in runs.values() if r.status == "failed"]
    assert [(r.arch_key, r.fold) for r in failed] == [(second, 1)]
    assert "Traceback" in failed[0].error and "fault injected" in failed[0].error
    log, ref_log = log_without_times(out), log_without_times(reference)
    assert log[1]["arch_key"] == second and log[1]["score"] is None
    assert log[0] == ref_log[0]  # the runs before and after are unaffected
    assert results(out)[(second, 0, 0)] == results(reference)[(second, 0, 0)]


def test_kept_weights_come_back_to_the_driver(cluster: Any, dataset: Any,
                                              tmp_path: Path) -> None:
    from mbnas.commands.common.dataset import training_data

    data = training_data(dataset[0], dataset[1], 32)
    folds = (data.case_ids[:3], data.case_ids[3:])
    arch = preset("unet")
    spec = RunSpec(arch.to_dict(), arch.key, 1, 0,
                   get_protocol("quick", keep_weights=True, **PROTOCOL))
    (record,) = RayExecutor().run([spec], RunContext(data, folds, "cpu",
                                                     str(tmp_path / "ray")))
    local = execute_run(spec, RunContext(data, folds, "cpu", str(tmp_path / "local")))
    assert record.status == "finished"
    assert record.weights_path == str((tmp_path / "ray" / arch.key / "fold1_seed0.pt").resolve())
    ours, theirs = load_weights(record.weights_path), load_weights(local.weights_path)
    assert ours.keys() == theirs.keys()
    assert all(torch.equal(ours[k], theirs[k]) for k in ours)


def test_settings_are_checked(cluster: Any, dataset: Any) -> None:
    with pytest.raises(ConfigError, match="unknown Ray settings: cpus"):
        RayExecutor.from_settings({"cpus": 2})
    with pytest.raises(ConfigError, match="gpus_per_run"):
        RayExecutor(gpus_per_run=1.5)
    with pytest.raises(ConfigError, match="cpus_per_run must be > 0"):
        RayExecutor(cpus_per_run=0)
    with pytest.raises(ConfigError, match="no node of the Ray cluster has 3 CPUs"):
        RayExecutor(cpus_per_run=3).start()
    with pytest.raises(ConfigError, match="needs GPUs"):
        next(RayExecutor().run([], RunContext(None, (), "cuda")))  # type: ignore[arg-type]


def test_unreachable_address_fails_fast() -> None:
    with socket_listener() as port:
        check_address(f"127.0.0.1:{port}")  # something listens: accepted
    with pytest.raises(ConfigError, match="no Ray cluster answers at 127.0.0.1"):
        check_address(f"127.0.0.1:{port}")  # closed now
    with pytest.raises(ConfigError, match="not 'auto' or HOST:PORT"):
        check_address("head-node")


@contextlib.contextmanager
def socket_listener() -> Any:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


def test_killed_driver_resumes_without_retraining(cluster: Any, dataset: Any,
                                                  reference: Path, tmp_path: Path) -> None:
    """`mbnas search --executor ray` SIGKILLed after its first committed run, then resumed.

    The driver joins this module's Ray instance by address, as on a real cluster.
    """
    data, cache = dataset
    config = tmp_path / "search.yaml"
    config.write_text(yaml.safe_dump({"protocol": {"base_channels": 4}}))
    out = tmp_path / "search"
    address = ray.get_runtime_context().gcs_address
    cmd = [sys.executable, "-m", "mbnas.cli", "search", str(data), "--out", str(out),
           "--config", str(config), "--space", "mbnas", "--strategy", "local",
           "--budget", str(BUDGET), "--start", "unet", "--cache", str(cache),
           "--protocol", "quick", "--epochs", "1", "--folds", "2", "--image-size", "32",
           "--executor", "ray", "--address", address, "--cpus-per-run", "1"]
    driver = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and driver.poll() is None:
            if committed_runs(out / "store.sqlite"):
                break
            time.sleep(0.02)
    finally:
        driver.send_signal(signal.SIGKILL)
        _, stderr = driver.communicate(timeout=60)
    assert driver.returncode == -signal.SIGKILL, stderr.decode()[-2000:]
    before = runs_by_key(out)
    assert 1 <= len(before) < RUNS  # killed mid-search, with work committed

    assert "Ray dashboard: http://" in stderr.decode()

    # Started again (here in this process, as the CLI does: the folder's config.yaml).
    config = SearchConfig.from_dict(yaml.safe_load((out / "config.yaml").read_text()))
    assert config.executor == "ray" and config.ray["address"] == address
    outcome = run_search(config, out, executor=RayExecutor.from_settings(config.ray))
    assert outcome.resumed and outcome.n_evaluated == BUDGET
    after = runs_by_key(out)
    assert len(after) == RUNS
    for key, run in before.items():  # committed runs were not trained again
        assert after[key].started_at == run.started_at
        assert after[key].finished_at == run.finished_at
        assert after[key].curve == run.curve
    assert_same_search(out, reference)


def test_cli_refuses_unknown_ray_settings(dataset: Any, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    from mbnas.cli import main

    config = tmp_path / "search.yaml"
    config.write_text(yaml.safe_dump({"executor": "ray", "ray": {"gpus": 1}}))
    code = main(["search", str(dataset[0]), "--out", str(tmp_path / "s"),
                 "--config", str(config), "--protocol", "quick"])
    assert code == 2
    assert "unknown Ray settings: gpus" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()


def test_a_run_uses_the_threads_it_is_given(cluster: Any, dataset: Any) -> None:
    """threads=2 through Ray equals 2 torch threads in process (Ray's default would be 1)."""
    from mbnas.commands.common.dataset import training_data

    data = training_data(dataset[0], dataset[1], 32)
    ctx = RunContext(data, (data.case_ids[:3], data.case_ids[3:]), "cpu")
    arch = preset("unet")
    spec = RunSpec(arch.to_dict(), arch.key, 0, 0,
                   get_protocol("quick", **{**PROTOCOL, "epochs": 1}))
    (record,) = RayExecutor(cpus_per_run=1, threads=2).run([spec], ctx)
    torch.set_num_threads(2)
    try:
        local = execute_run(spec, ctx)
    finally:
        torch.set_num_threads(1)
    assert record.status == local.status == "finished"
    assert record.curve[0]["loss"] == local.curve[0]["loss"]
