"""Run training runs on a Ray cluster (or a local Ray instance): one Ray task per run.

The driver keeps the durability: it submits a batch of runs, collects them as they
finish (``ray.wait``) and yields each record, which the evaluator commits at once.
Ray retries a run whose worker process died (``max_retries``); an exception inside a
run comes back as a failed record with its traceback (``execute_run`` catches it), and
an error of Ray itself on a task also becomes a failed record, so one bad architecture
never stops a search.

The preprocessed dataset travels once: the run context is put into Ray's object store
once per executor and every task receives the same reference, so each node fetches it
once, not once per run.
"""

from __future__ import annotations

import os
import traceback
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from mbnas.engine.runs import RunContext, RunHooks, RunSpec, execute_run, utc_now
from mbnas.errors import ConfigError
from mbnas.store import RunRecord, runtime_versions

# Test hook: when this names a file that does not exist yet, the first run to start
# creates it and kills its own worker process, as a crashed node would.
CRASH_ONCE_ENV = "MBNAS_TEST_CRASH_ONCE_FILE"


def _run_remote(spec: RunSpec, ctx: RunContext) -> RunRecord:
    marker = os.environ.get(CRASH_ONCE_ENV)
    if marker:
        try:
            fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            pass
        else:
            os.close(fd)
            os._exit(1)
    return execute_run(spec, ctx)


def _failed(spec: RunSpec, error: str) -> RunRecord:
    return RunRecord(
        arch_key=spec.arch_key, protocol_key=spec.protocol.key, fold=spec.fold, seed=spec.seed,
        status="failed", score=None, curve=[], metrics={}, seconds=0.0, device="ray",
        versions=runtime_versions(), architecture=spec.architecture,
        protocol=spec.protocol.to_dict(),
        started_at=utc_now(), finished_at=utc_now(), error=error, weights_path=None,
    )


@dataclass
class RayExecutor:
    """Executor on Ray.

    Args:
        address: ``None`` starts a local Ray instance; ``"auto"`` or ``"HOST:PORT"``
            joins a running cluster (``ray start --head`` / ``ray start --address``).
        cpus_per_run: CPUs reserved per training run.
        gpus_per_run: GPUs per run; a fraction (e.g. 0.25) lets several small networks
            train at once on one GPU.
        max_retries: Retries of a run whose worker died (Ray's task retries).
        num_cpus: CPUs of a local instance (None: all of this machine's).
    """

    address: str | None = None
    cpus_per_run: float = 1.0
    gpus_per_run: float = 0.0
    max_retries: int = 3
    num_cpus: int | None = None
    name: str = field(default="ray", init=False)
    _ctx_ref: Any = field(default=None, init=False, repr=False)
    _ctx_id: int | None = field(default=None, init=False, repr=False)

    def start(self) -> None:
        try:
            import ray
        except ImportError:
            raise ConfigError(
                "the Ray executor needs Ray: pip install 'mbnas[ray]'"
            ) from None
        if ray.is_initialized():
            return
        kwargs: dict[str, Any] = {"log_to_driver": False, "include_dashboard": None}
        if self.address is not None:
            kwargs["address"] = self.address
        elif self.num_cpus is not None:
            kwargs["num_cpus"] = self.num_cpus
        context = ray.init(**kwargs)
        url = getattr(context, "dashboard_url", None)
        if url:
            print(f"Ray dashboard: http://{url}", flush=True)

    def _context_ref(self, ctx: RunContext) -> Any:
        import ray

        if self._ctx_id != id(ctx):
            self._ctx_ref, self._ctx_id = ray.put(ctx), id(ctx)
        return self._ctx_ref

    def run(self, specs: Sequence[RunSpec], ctx: RunContext,
            hooks: RunHooks | None = None) -> Iterator[RunRecord]:
        import ray

        self.start()
        task = ray.remote(_run_remote).options(
            num_cpus=self.cpus_per_run, num_gpus=self.gpus_per_run,
            max_retries=self.max_retries, retry_exceptions=False,
        )
        ref = self._context_ref(ctx)
        pending = {}
        for spec in specs:
            pending[task.remote(spec, ref)] = spec
            if hooks is not None:
                hooks.run_started(spec)
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for obj in done:
                spec = pending.pop(obj)
                try:
                    yield ray.get(obj)
                except ray.exceptions.RayError:
                    yield _failed(spec, traceback.format_exc())


def shutdown() -> None:
    import ray

    if ray.is_initialized():
        ray.shutdown()
