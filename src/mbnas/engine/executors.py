"""Executors registered by name: where training runs execute.

One list, read by the CLI's ``--executor`` choices, the configs and
:func:`make_executor`. An executor is a factory registered with
:func:`register_executor` (the built-in ones in :mod:`mbnas.engine.builtin_executors`,
which imports their classes only when one is made); a duplicate name is an error and an
unknown name lists the valid ones. Every executor follows
:class:`mbnas.engine.runs.Executor`: ``start()``, ``run(...)`` per batch, ``close()``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mbnas.errors import ConfigError

if TYPE_CHECKING:
    from mbnas.engine.runs import Executor

#: The executor used unless a config names another: runs in this process.
DEFAULT_EXECUTOR = "inprocess"
#: The Ray executor's name (its class and its registration read it).
RAY_EXECUTOR = "ray"
#: Where the built-in executors are registered (imported on first look-up).
_BUILT_IN = ("mbnas.engine.builtin_executors",)


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


_EXECUTORS: dict[str, ExecutorDefinition] = {}


def register_executor(name: str, about: str = "", remote: bool = False
                      ) -> Callable[[Callable[[ExecutorSettings], Executor]],
                                    Callable[[ExecutorSettings], Executor]]:
    """Register a factory ``f(ExecutorSettings) -> Executor`` under ``name``.

    Raises:
        ValueError: If the name is taken (a duplicate is an error, not a warning).
    """

    def decorator(factory: Callable[[ExecutorSettings], Executor]
                  ) -> Callable[[ExecutorSettings], Executor]:
        if name in _EXECUTORS:
            raise ValueError(f"executor {name!r} is already registered")
        _EXECUTORS[name] = ExecutorDefinition(name, factory, about, remote)
        return factory

    return decorator


def unregister_executor(name: str) -> None:
    """Remove a registration (for tests that register an executor of their own)."""
    _EXECUTORS.pop(name, None)


def _registered() -> dict[str, ExecutorDefinition]:
    for module in _BUILT_IN:
        importlib.import_module(module)
    return _EXECUTORS


def executor_names() -> tuple[str, ...]:
    """The registered executor names, the default first."""
    names = tuple(_registered())
    return (DEFAULT_EXECUTOR, *(n for n in names if n != DEFAULT_EXECUTOR))


def check_executor(name: str) -> ExecutorDefinition:
    """The definition of executor ``name``.

    Raises:
        ConfigError: If the name is unknown; the message lists the valid names.
    """
    try:
        return _registered()[name]
    except (KeyError, TypeError):
        raise ConfigError(f"unknown executor {name!r}; choose one of "
                          f"{', '.join(executor_names())}") from None


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
