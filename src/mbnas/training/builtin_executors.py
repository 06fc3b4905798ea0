"""The built-in executors' registrations, apart from their classes.

Registering here, not beside the classes, keeps the registry's names and descriptions
readable without importing torch or Ray (``mbnas search --help`` lists them), and keeps
the executors' modules free of imports back into one another: each factory imports its
class only when an executor is made.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mbnas.training.executors import (
    DEFAULT_EXECUTOR,
    RAY_EXECUTOR,
    ExecutorSettings,
    register_executor,
)

if TYPE_CHECKING:
    from mbnas.training.ray_executor import RayExecutor
    from mbnas.training.runs import Executor


@register_executor(DEFAULT_EXECUTOR, about="one run after another in this process (the "
                   "default); with --runs-per-device or --fuse, a pool of local workers")
def _make_in_process(settings: ExecutorSettings) -> Executor:
    if settings.runs_per_device > 1 or settings.fuse:
        from mbnas.training.pool import LocalPoolExecutor

        return LocalPoolExecutor(settings.runs_per_device, settings.threads, settings.fuse)
    from mbnas.training.runs import InProcessExecutor

    return InProcessExecutor(threads=settings.threads)


@register_executor(RAY_EXECUTOR, remote=True,
                   about="one Ray task per run, on a Ray cluster or a local Ray instance "
                         "(settings: the config's ray section, --address, --cpus-per-run, "
                         "--gpus-per-run)")
def _make_ray(settings: ExecutorSettings) -> RayExecutor:
    from mbnas.training.ray_executor import RayExecutor

    options = dict(settings.options)
    if settings.threads is not None:
        options.setdefault("threads", settings.threads)
    return RayExecutor.from_settings(options)
