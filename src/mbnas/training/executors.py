"""Executors registered by name: where training runs execute.

One list, read by the CLI's ``--executor`` choices, the configs and
:func:`make_executor`. An executor is a factory registered with
:func:`register_executor` (the built-in ones in :mod:`mbnas.training.builtin_executors`,
which imports their classes only when one is made); a duplicate name is an error and an
unknown name lists the valid ones. Every executor follows
:class:`mbnas.training.runs.Executor`: ``start()``, ``run(...)`` per batch, ``close()``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mbnas.errors import ConfigError
from mbnas.registry import Registry

if TYPE_CHECKING:
    from mbnas.training.runs import Executor

#: The executor used unless a config names another: runs in this process.
DEFAULT_EXECUTOR = "inprocess"
#: The Ray executor's name (its class and its registration read it).
RAY_EXECUTOR = "ray"


@dataclass(frozen=True)
class ExecutorSettings:
    """What a config says about execution, for an executor factory.

    Attributes:
        options: The executor's own section of the config (``ray:`` for Ray).
        threads: Intra-op CPU threads of each run (None: the executor's default).
        runs_per_device: Runs trained at once on one device.
        fuse: Train the seeds of one architecture and fold as one fused network.
    """

    options: Mapping[str, Any]
    threads: int | None = None
    runs_per_device: int = 1
    fuse: bool = False


@dataclass(frozen=True)
class ExecutorDefinition:
    """A registered executor: its name, factory, one line for ``--help``, and whether its
    runs train on other machines (``remote``: this machine's device is not checked)."""

    name: str
    factory: Callable[[ExecutorSettings], Executor]
    about: str = ""
    remote: bool = False


#: Every executor, by name; the built-in ones (the default first) register in these modules.
EXECUTORS: Registry[ExecutorDefinition] = Registry(
    "executor", "where training runs execute",
    builtins=("mbnas.training.builtin_executors",))


def register_executor(name: str, about: str = "", remote: bool = False
                      ) -> Callable[[Callable[[ExecutorSettings], Executor]],
                                    Callable[[ExecutorSettings], Executor]]:
    """Register a factory ``f(ExecutorSettings) -> Executor`` under ``name``.

    Raises:
        ValueError: If the name is taken (a duplicate is an error, not a warning).
    """
    return EXECUTORS.decorator(name, lambda factory: ExecutorDefinition(name, factory,
                                                                        about, remote))


#: The registered executor names, the default (``inprocess``) first.
executor_names = EXECUTORS.names

#: The definition of an executor by name (``ConfigError`` listing the valid names).
check_executor = EXECUTORS.get


def make_executor(kind: str, options: Mapping[str, Any] | None = None,
                  threads: int | None = None, runs_per_device: int = 1,
                  fuse: bool = False) -> Executor:
    """The executor named by a config, built from its settings (not yet started).

    ``threads`` applies to every executor, so the same settings give the same numbers
    either way. ``options`` is the executor's own config section (``ray:``).

    Raises:
        ConfigError: an unknown name or invalid settings.
    """
    if threads is not None and threads < 1:
        raise ConfigError(f"threads must be >= 1, got {threads}")
    if runs_per_device < 1:
        raise ConfigError(f"runs_per_device must be >= 1, got {runs_per_device}")
    definition = check_executor(kind)
    return definition.factory(ExecutorSettings(dict(options or {}), threads,
                                               runs_per_device, fuse))
