"""One registry design for every kind of part: blocks, spaces, strategies, executors, metrics.

A :class:`Registry` holds named entries in registration order. A duplicate name is an
error (not a warning, unlike timm), and looking up an unknown name fails with one line
listing the valid names, in the registry's own error type (``GenotypeError`` for blocks,
``ConfigError`` elsewhere), so the CLI prints it as a refusal with exit code 2.

The built-in entries register themselves in their own modules (a decorator beside the
class or function); the registry names those modules (``builtins``) and imports them on
its first look-up. So the module defining a registry imports none of its entries, and
nothing imports back into it but the entries themselves: no import circle. Built-in
entries are listed in the order of ``builtins`` whichever module happened to be
imported first; entries registered from elsewhere (plugins, tests) follow, in
registration order.

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
from typing import Any, Generic, TypeVar, overload

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
        self._origin: dict[str, str] = {}  # name -> module that registered it

    # -- registering ------------------------------------------------------------------
    def register(self, name: str, entry: T, *, module: str = "") -> T:
        """Add ``entry`` under ``name`` and return it.

        ``module`` is the module registering it (the decorator passes the decorated
        object's); a built-in module's entries keep the order of ``builtins``.

        Raises:
            ValueError: If ``name`` is empty or already registered (a programming error,
                not a user's).
        """
        if not isinstance(name, str) or not name:
            raise ValueError(f"a {self.kind} needs a non-empty name, got {name!r}")
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is already registered; choose another name")
        self._entries[name] = entry
        self._origin[name] = module
        return entry

    def decorator(self, name: str, wrap: Callable[[E], T] | None = None
                  ) -> Callable[[E], E]:
        """A decorator registering the decorated object under ``name``.

        ``wrap`` turns the object into the stored entry (e.g. a definition dataclass
        holding a builder function); the decorated object itself is returned unchanged.
        """

        def decorate(obj: E) -> E:
            entry = wrap(obj) if wrap is not None else obj
            self.register(name, entry, module=getattr(obj, "__module__", ""))  # type: ignore[arg-type]
            return obj

        return decorate

    def unregister(self, name: str) -> T:
        """Remove and return the entry ``name`` (for tests and temporary plugins)."""
        self._load()
        if name not in self._entries:
            raise self._unknown(name)
        self._origin.pop(name, None)
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

    def find(self, name: object) -> T | None:
        """The entry registered as ``name``, or None (a name read from an old file)."""
        self._load()
        return self._entries.get(name) if isinstance(name, str) else None

    def names(self) -> tuple[str, ...]:
        """Every registered name, in registration order."""
        self._load()
        return self._ordered()

    def items(self) -> tuple[tuple[str, T], ...]:
        """``(name, entry)`` pairs in the order of :meth:`names`."""
        return tuple((name, self._entries[name]) for name in self.names())

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

    def _ordered(self) -> tuple[str, ...]:
        rank = {module: i for i, module in enumerate(self._builtins)}
        last = len(rank)
        return tuple(sorted(self._entries, key=lambda n: rank.get(self._origin[n], last)))

    def _unknown(self, name: object) -> MbnasError:
        valid = ", ".join(self._ordered()) or "(none registered)"
        return self._error(f"unknown {self.kind} {name!r}; valid: {valid}")


class NamesView(Sequence[str]):
    """A live, read-only view of a registry's names: unlike a tuple taken at import, it
    shows the entries a plugin registers later.

    Args:
        registry: The registry viewed.
    """

    def __init__(self, registry: Registry[Any]) -> None:
        self._registry = registry

    @overload
    def __getitem__(self, index: int) -> str: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[str, ...]: ...

    def __getitem__(self, index: int | slice) -> str | tuple[str, ...]:
        return self._registry.names()[index]

    def __len__(self) -> int:
        return len(self._registry.names())

    def __repr__(self) -> str:
        return repr(self._registry.names())
