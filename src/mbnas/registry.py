"""One registry design for every kind of part: blocks, spaces, strategies, executors, metrics.

A :class:`Registry` holds named entries in registration order. A duplicate name is an
error (not a warning, unlike timm), and looking up an unknown name fails with one line
listing the valid names, in the registry's own error type (``GenotypeError`` for blocks,
``ConfigError`` elsewhere), so the CLI prints it as a refusal with exit code 2.

This module imports nothing heavy, so any layer may use it.

Example::

    STRATEGIES: Registry[StrategyDefinition] = Registry("search strategy", "...")

    @STRATEGIES.decorator("local")
    def build_local(...): ...

    STRATEGIES.get("local")       # the entry
    STRATEGIES.names()            # ("local", ...) in registration order
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Sequence
from typing import Generic, TypeVar

from mbnas.errors import ConfigError, MbnasError

T = TypeVar("T")
E = TypeVar("E")


class Registry(Generic[T]):
    """Named entries of one kind, in registration order.

    Args:
        kind: What an entry is, singular ("block", "search strategy"); used in messages.
        about: One line saying what the registry holds (for docs and ``--help``).
        error: The exception type an unknown name raises (a :class:`MbnasError`).
        builtins: Modules that register the built-in entries; imported on the first
            look-up, so that defining the registry imports none of its entries.
    """

    def __init__(self, kind: str, about: str = "", *, error: type[MbnasError] = ConfigError,
                 builtins: Sequence[str] = ()) -> None:
        self.kind = kind
        self.about = about
        self._error = error
        self._builtins = tuple(builtins)
        self._loaded = not self._builtins
        self._entries: dict[str, T] = {}

    # -- registering ------------------------------------------------------------------
    def register(self, name: str, entry: T) -> T:
        """Add ``entry`` under ``name`` and return it.

        Raises:
            ValueError: If ``name`` is empty or already registered (a programming error,
                not a user's).
        """
        if not isinstance(name, str) or not name:
            raise ValueError(f"a {self.kind} needs a non-empty name, got {name!r}")
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is already registered; choose another name")
        self._entries[name] = entry
        return entry

    def decorator(self, name: str, wrap: Callable[[E], T] | None = None
                  ) -> Callable[[E], E]:
        """A decorator registering the decorated object under ``name``.

        ``wrap`` turns the object into the stored entry (e.g. a definition dataclass
        holding a builder function); the decorated object itself is returned unchanged.
        """

        def decorate(obj: E) -> E:
            self.register(name, wrap(obj) if wrap is not None else obj)  # type: ignore[arg-type]
            return obj

        return decorate

    def unregister(self, name: str) -> T:
        """Remove and return the entry ``name`` (for tests and temporary plugins)."""
        self._load()
        if name not in self._entries:
            raise self._unknown(name)
        return self._entries.pop(name)

    # -- looking up -------------------------------------------------------------------
    def get(self, name: str) -> T:
        """The entry registered as ``name``.

        Raises:
            MbnasError: The registry's error type, listing the valid names.
        """
        self._load()
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            raise self._unknown(name) from None

    def names(self) -> tuple[str, ...]:
        """Every registered name, in registration order."""
        self._load()
        return tuple(self._entries)

    def items(self) -> tuple[tuple[str, T], ...]:
        """``(name, entry)`` pairs in registration order."""
        self._load()
        return tuple(self._entries.items())

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {len(self._entries)} entries)"

    # -- internals --------------------------------------------------------------------
    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True  # before importing: a built-in module may look names up
        for module in self._builtins:
            importlib.import_module(module)

    def _unknown(self, name: object) -> MbnasError:
        valid = ", ".join(self._entries) or "(none registered)"
        return self._error(f"unknown {self.kind} {name!r}; valid: {valid}")
