"""Run training runs on a Ray cluster (or a local Ray instance): one Ray task per run.

The driver keeps the durability. :meth:`RayExecutor.run` submits a whole batch of runs
(all folds x seeds of the architectures the strategy asked for), collects them as they
finish (``ray.wait``) and yields each record, which the evaluator commits to the store
at once. So a killed driver loses only the runs still in flight; started again, it
trains just those.

Failures:

* A worker process that dies (a crashed node, the host's out-of-memory killer) is
  retried by Ray up to ``max_retries`` times; after that the run is a failed record.
* An exception inside a run (e.g. CUDA out of memory) becomes a failed record with its
  traceback (``execute_run`` catches it); so does any other Ray error of a task.
  The evaluator warns and the architecture scores as failed; the search goes on.

Data: the run context (the preprocessed slices) is put into Ray's object store once per
executor and every task gets the same reference, so each node fetches the arrays once
and its workers map them zero-copy from shared memory; never once per run.

Weights: with ``keep_weights`` a worker saves into a private temporary folder and sends
the file back with the record; the driver writes it atomically under the context's
``weights_dir``, so the weights end up next to the store on the driver's machine even
when the worker nodes share no file system with it.

Same results: a run uses exactly ``threads`` intra-op CPU threads (default: the CPUs it
reserves, ``floor(cpus_per_run)``, at least 1). CPU float sums depend on the thread
count, so a Ray run equals an in-process run bit for bit when the in-process driver uses
as many threads (``OMP_NUM_THREADS=1 mbnas search ...`` matches ``--cpus-per-run 1``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import socket
import sys
import tempfile
import traceback
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mbnas.errors import ConfigError
from mbnas.io import atomic_write
from mbnas.store import RunRecord, runtime_versions
from mbnas.training.executors import RAY_EXECUTOR
from mbnas.training.runs import RunContext, RunHooks, RunSpec, execute_run, utc_now
from mbnas.training.train import EpochStats

_AUTH_HINT = (
    "if the cluster uses token authentication, set RAY_AUTH_MODE=token and make its "
    "token available (~/.ray/auth_token, RAY_AUTH_TOKEN or RAY_AUTH_TOKEN_PATH); "
    "see docs/cluster.md"
)


def check_address(address: str) -> None:
    """Fail fast, with a clear message, when nothing listens at a ``HOST:PORT`` address.

    ``ray.init`` itself retries for a minute or two and then exits the process.
    ``"auto"`` and ``"local"`` are left to Ray.

    Raises:
        ConfigError: If the address is malformed or its port does not accept connections.
    """
    if address in ("auto", "local"):
        return
    hostport = address.split("://", 1)[-1]
    host, sep, port = hostport.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ConfigError(
            f"Ray address {address!r} is not 'auto' or HOST:PORT (e.g. 10.0.0.1:6379)"
        )
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=5).close()
    except OSError as exc:
        raise ConfigError(
            f"no Ray cluster answers at {address} ({exc.strerror or exc}); start one with "
            "`ray start --head` or check the address"
        ) from None


def train_on_worker(spec: RunSpec, ctx: RunContext, threads: int, use_gpu: bool,
                    on_epoch: Callable[[EpochStats], None] | None = None,
                    ) -> tuple[RunRecord, str | None, bytes | None]:
    """The body of a Ray task: one run, returned with its kept weights (if any).

    Args:
        spec: The run.
        ctx: The run context (from the object store).
        threads: Intra-op CPU threads for the run.
        use_gpu: Whether the task reserved a GPU; without one, "auto" means the CPU.
        on_epoch: Called after every epoch of the run, on the worker.

    Returns:
        The record, the weights file's path relative to ``weights_dir`` and its bytes
        (both None without kept weights).
    """
    import torch

    torch.set_num_threads(threads)
    # Ray (2.60) no longer hides GPUs from tasks that reserved none: "auto" would put
    # every run on GPU 0.
    device = "cpu" if ctx.device == "auto" and not use_gpu else ctx.device
    with tempfile.TemporaryDirectory(prefix="mbnas-run-") as tmp:
        local = dataclasses.replace(ctx, device=device,
                                    weights_dir=tmp if ctx.weights_dir else None)
        record = execute_run(spec, local, on_epoch)
        if record.weights_path is None:
            return record, None, None
        kept = Path(record.weights_path)
        return record, str(kept.relative_to(Path(tmp).resolve())), kept.read_bytes()


def _failed(spec: RunSpec, ctx: RunContext, error: str) -> RunRecord:
    now = utc_now()
    return RunRecord(
        arch_key=spec.arch_key, protocol_key=spec.protocol.key, fold=spec.fold, seed=spec.seed,
        status="failed", score=None, curve=[], metrics={}, seconds=0.0, device=ctx.device,
        versions=runtime_versions(), architecture=spec.architecture,
        protocol=spec.protocol.to_dict(), started_at=now, finished_at=now, error=error,
        weights_path=None, failure="environment",  # a lost worker says nothing of the network
        data_fingerprint=ctx.data_fingerprint,
    )


@dataclass
class RayExecutor:
    """Executor on Ray: runs train in parallel as Ray tasks, collected as they finish.

    Args:
        address: ``None`` starts a local Ray instance (ignoring ``RAY_ADDRESS``);
            ``"auto"`` joins the cluster started on this machine by ``ray start`` (or
            ``RAY_ADDRESS``); ``"HOST:PORT"`` joins the cluster whose head is there.
        cpus_per_run: CPUs reserved per training run.
        gpus_per_run: GPUs per run; a fraction (e.g. 0.25) lets several small networks
            train at once on one GPU. With 0, runs train on CPUs.
        threads: Intra-op CPU threads of a run; default ``max(1, floor(cpus_per_run))``.
        max_retries: Retries of a run whose worker process died.
        num_cpus: CPUs of a local instance (default: all of this machine's).
        include_dashboard: Start the dashboard of a local instance (default: when
            ``ray[default]`` is installed).
    """

    address: str | None = None
    cpus_per_run: float = 1.0
    gpus_per_run: float = 0.0
    threads: int | None = None
    max_retries: int = 3
    num_cpus: int | None = None
    include_dashboard: bool | None = None
    name: str = field(default=RAY_EXECUTOR, init=False)
    dashboard_url: str | None = field(default=None, init=False)
    _owns_ray: bool = field(default=False, init=False, repr=False)
    _task: Any = field(default=None, init=False, repr=False)
    _ctx: RunContext | None = field(default=None, init=False, repr=False)
    _ctx_ref: Any = field(default=None, init=False, repr=False)
    _warned_gpu: bool = field(default=False, init=False, repr=False)

    def __post_init__(self) -> None:
        problems = []
        if not self.cpus_per_run > 0:
            problems.append(f"cpus_per_run must be > 0, got {self.cpus_per_run}")
        gpus = self.gpus_per_run
        if gpus < 0 or (gpus > 1 and gpus != int(gpus)):
            problems.append(f"gpus_per_run must be a fraction of one GPU or a whole number "
                            f"of GPUs, got {gpus}")
        if self.threads is not None and self.threads < 1:
            problems.append(f"threads must be >= 1, got {self.threads}")
        if self.max_retries < 0:
            problems.append(f"max_retries must be >= 0, got {self.max_retries}")
        if self.num_cpus is not None and self.num_cpus < 1:
            problems.append(f"num_cpus must be >= 1, got {self.num_cpus}")
        if problems:
            raise ConfigError("invalid Ray settings: " + "; ".join(problems))

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> RayExecutor:
        """Build from a config's ``ray`` section; unknown keys are a ConfigError."""
        known = {f.name for f in dataclasses.fields(cls) if f.init}
        unknown = sorted(set(settings) - known)
        if unknown:
            raise ConfigError(f"unknown Ray settings: {', '.join(unknown)}; "
                              f"known: {', '.join(sorted(known))}")
        return cls(**settings)

    @property
    def run_threads(self) -> int:
        """Intra-op threads of each run."""
        return self.threads or max(1, math.floor(self.cpus_per_run))

    def start(self) -> None:
        """Connect to (or start) Ray, print the dashboard's address, check the resources.

        In a process where Ray is already initialised (a notebook, a test) that instance
        is used, and :meth:`close` leaves it running.
        """
        try:
            import ray
        except ImportError:
            raise ConfigError("the Ray executor needs Ray: pip install 'mbnas[ray]'") from None
        if self._task is not None:
            return
        if not ray.is_initialized():
            url = self._connect(ray)
            if url:
                self.dashboard_url = url if "://" in url else f"http://{url}"
                print(f"Ray dashboard: {self.dashboard_url}", file=sys.stderr, flush=True)
        self._check_resources(ray)
        self._task = ray.remote(self.task_body).options(
            num_cpus=self.cpus_per_run, num_gpus=self.gpus_per_run,
            max_retries=self.max_retries, retry_exceptions=False,
        )

    def _connect(self, ray: Any) -> str | None:
        """``ray.init`` with this executor's settings; returns the dashboard's address."""
        kwargs: dict[str, Any] = {"log_to_driver": False}
        if self.address is None:
            kwargs.update(address="local", num_cpus=self.num_cpus,
                          include_dashboard=self.include_dashboard)
        else:
            check_address(self.address)
            kwargs["address"] = self.address
        where = "a local Ray instance" if self.address is None else self.address
        try:
            context = ray.init(**kwargs)
        except (ConnectionError, RuntimeError, ValueError, TimeoutError, SystemExit) as exc:
            raise ConfigError(f"cannot start or join Ray at {where}: {exc}; {_AUTH_HINT}"
                              ) from None
        self._owns_ray = True
        return getattr(context, "dashboard_url", None) or None

    def _check_resources(self, ray: Any) -> None:
        """Refuse runs no node can hold: Ray would wait for them forever."""
        nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]
        if any(r.get("CPU", 0) >= self.cpus_per_run and r.get("GPU", 0) >= self.gpus_per_run
               for r in nodes):
            return
        largest: dict[str, Any] = max(nodes, key=lambda r: (r.get("GPU", 0), r.get("CPU", 0)),
                                      default={})
        raise ConfigError(
            f"no node of the Ray cluster has {self.cpus_per_run:g} CPUs and "
            f"{self.gpus_per_run:g} GPUs for a run (largest: {largest.get('CPU', 0):g} "
            f"CPUs, {largest.get('GPU', 0):g} GPUs); lower --cpus-per-run / --gpus-per-run"
        )

    def _context_ref(self, ctx: RunContext) -> Any:
        """The context's object-store reference, put once per context."""
        import ray

        if self._ctx is not ctx:
            self._ctx_ref, self._ctx = ray.put(ctx), ctx
        return self._ctx_ref

    def _check_device(self, ctx: RunContext) -> None:
        import ray

        if ctx.device.startswith("cuda") and self.gpus_per_run == 0:
            raise ConfigError(f"device {ctx.device!r} needs GPUs: pass --gpus-per-run "
                              "(e.g. 1, or 0.25 to share a GPU between four runs)")
        if ctx.device != "auto" or self.gpus_per_run > 0 or self._warned_gpu:
            return
        cluster_gpus = ray.cluster_resources().get("GPU", 0)
        if cluster_gpus:
            self._warned_gpu = True
            warnings.warn(f"the Ray cluster has {cluster_gpus:g} GPUs but runs reserve none, "
                          "so they train on CPUs; pass --gpus-per-run to use them",
                          RuntimeWarning, stacklevel=3)

    def run(self, specs: Sequence[RunSpec], ctx: RunContext,
            hooks: RunHooks | None = None) -> Iterator[RunRecord]:
        """Submit all ``specs`` at once and yield their records as they finish."""
        import ray

        self.start()
        self._check_device(ctx)
        ref = self._context_ref(ctx)
        use_gpu = self.gpus_per_run > 0
        pending: dict[Any, RunSpec] = {}
        try:
            for spec in specs:
                obj = self._task.remote(spec, ref, self.run_threads, use_gpu,
                                        *self.task_arguments(spec))
                pending[obj] = spec
                if hooks is not None:
                    hooks.run_started(spec)
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                for obj in done:
                    spec = pending.pop(obj)
                    yield self._collect(ray, obj, spec, ctx)
        finally:  # the consumer stopped early (an error, Ctrl-C): free the cluster
            for obj in pending:
                with contextlib.suppress(Exception):  # best effort: the driver is leaving
                    ray.cancel(obj, force=True)

    def _collect(self, ray: Any, obj: Any, spec: RunSpec, ctx: RunContext) -> RunRecord:
        try:
            record, rel, blob = ray.get(obj)
        except ray.exceptions.RayError as exc:
            detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
            return _failed(spec, ctx, f"Ray could not run it: {detail}")
        if blob is not None and ctx.weights_dir:
            path = Path(ctx.weights_dir) / rel
            atomic_write(path, lambda f: f.write(blob))
            record = dataclasses.replace(record, weights_path=str(path.resolve()))
        return record

    @property
    def task_body(self) -> Callable[..., tuple[RunRecord, str | None, bytes | None]]:
        """The function each Ray task runs: ``f(spec, ctx, threads, use_gpu, *extra)``,
        ``extra`` from :meth:`task_arguments` (a subclass may wrap it, e.g. to inject
        faults in tests)."""
        return train_on_worker

    def task_arguments(self, spec: RunSpec) -> tuple[Any, ...]:
        """Extra arguments of the task of ``spec`` (none here)."""
        return ()

    def close(self) -> None:
        """Shut Ray down if this executor started it (idempotent)."""
        if self._owns_ray:
            import ray

            ray.shutdown()
            self._owns_ray = False
        self._task, self._ctx, self._ctx_ref = None, None, None

    def __enter__(self) -> RayExecutor:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
