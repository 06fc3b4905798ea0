"""The block registry: block families registered by name, looked up by name.

A block family is a small ``nn.Module`` whose constructor takes
``(in_channels, out_channels, kernel_size, stride=1)`` and whose forward keeps the
spatial size (stride 1) or halves it (stride 2, in a downscaling cell).
Genotypes refer to blocks by their registered name (never by class path), and the
builder, the search spaces (the options of every ``b`` variable) and the counting all
read the names from this registry, in registration order.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from torch import nn

from mbnas.errors import GenotypeError

BlockFactory = Callable[..., nn.Module]
T = TypeVar("T", bound=type[nn.Module])

_REGISTRY: dict[str, type[nn.Module]] = {}
_VARIANTS: set[str] = set()  # registered, but no space's default options


def register_block(name: str, *, variant: bool = False) -> Callable[[T], T]:
    """Class decorator that registers a block family under ``name``.

    Args:
        name: The name genotypes use for this family (lower case, no spaces).
        variant: A variant of a family (e.g. ``vgg2``): genotypes may use it and the
            builder builds it, but it is not among :func:`block_names`, so no space
            searches it unless the space names it.

    Raises:
        ValueError: If ``name`` is already registered (a duplicate is an error, not a
            warning) or is not a lower-case identifier.
    """
    if not name or name != name.strip().lower() or not name.replace("_", "").isalnum():
        raise ValueError(f"block name {name!r} must be a lower-case identifier such as 'vgg'")

    def decorator(cls: T) -> T:
        if name in _REGISTRY:
            raise ValueError(
                f"block {name!r} is already registered (by {_REGISTRY[name].__qualname__}); "
                "choose another name"
            )
        _REGISTRY[name] = cls
        if variant:
            _VARIANTS.add(name)
        return cls

    return decorator


def unregister_block(name: str) -> None:
    """Remove a registered family (for tests and plugins that register temporarily)."""
    if name not in _REGISTRY:
        raise GenotypeError(f"block {name!r} is not registered; registered: {_names_text()}")
    del _REGISTRY[name]
    _VARIANTS.discard(name)


def get_block(name: str) -> type[nn.Module]:
    """Return the block class registered as ``name``.

    Raises:
        GenotypeError: If ``name`` is not registered; the message lists the valid names.
    """
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise GenotypeError(
            f"unknown block {name!r}; valid blocks: {_names_text()}"
        ) from None


def block_names() -> tuple[str, ...]:
    """The registered block families (variants left out), in registration order."""
    return tuple(n for n in _REGISTRY if n not in _VARIANTS)


def all_block_names() -> tuple[str, ...]:
    """Every registered block, variants included, in registration order."""
    return tuple(_REGISTRY)


def _names_text() -> str:
    return ", ".join(_REGISTRY) or "(none)"
