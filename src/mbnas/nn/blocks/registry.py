"""The block registry: block families registered by name, looked up by name.

A block family is a small ``nn.Module`` whose constructor takes
``(in_channels, out_channels, kernel_size, stride=1, spatial_dims=2)`` and whose forward
keeps the spatial size (stride 1) or halves it (stride 2, in a downscaling cell). Its
registration says which spatial dimensions it supports (``dims``, default 2 only: a
2D-only family need not take ``spatial_dims``, the builder passes it only for 3D). Genotypes refer
to blocks by their registered name (never by class path); the builder looks them up
here. Registering a family never changes a search space: a space searches the families
it names (:attr:`mbnas.spaces.registry.SpaceDefinition.blocks`).

The built-in families register themselves in their own files (``@register_block``);
:data:`BLOCKS` imports those files on its first look-up, in the paper's order.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from mbnas.errors import GenotypeError
from mbnas.nn import check_dims
from mbnas.registry import Registry

if TYPE_CHECKING:
    from torch import nn

T = TypeVar("T", bound="type[nn.Module]")

#: Every block family, by name. Built-in: one file each, imported on the first look-up.
BLOCKS: Registry[type[nn.Module]] = Registry(
    "block", "block families: nn.Module(in_channels, out_channels, kernel_size, stride)",
    error=GenotypeError,
    builtins=("mbnas.nn.blocks.vgg", "mbnas.nn.blocks.residual",
              "mbnas.nn.blocks.dense", "mbnas.nn.blocks.inception",
              "mbnas.nn.blocks.vgg2"))

#: The spatial dimensions each family supports, by name (its registration's ``dims``).
_DIMS: dict[str, tuple[int, ...]] = {}

#: The built-in families and their ``dims``, declared here as well, so that a genotype or a
#: space is checked without importing their files and torch (`mbnas space info` stays
#: light); the shared block checks hold these equal to what the files register.
BUILTIN_DIMS: dict[str, tuple[int, ...]] = {
    "vgg": (2, 3), "residual": (2, 3), "dense": (2, 3), "inception": (2, 3), "vgg2": (2, 3)}
#: Built-in names a plugin or a test unregistered (then the registry answers for them).
_REMOVED: set[str] = set()


def register_block(name: str, dims: tuple[int, ...] = (2,)) -> Callable[[T], T]:
    """Class decorator that registers a block family under ``name`` in :data:`BLOCKS`.

    Args:
        name: The name genotypes use for this family (lower case, no spaces).
        dims: The spatial dimensions it supports: ``(2,)`` (the default: its constructor
            need not take ``spatial_dims``) or ``(2, 3)`` (its constructor takes
            ``spatial_dims=2`` and builds volumes' layers for 3).

    Raises:
        ValueError: If ``name`` is already registered (a duplicate is an error, not a
            warning) or is not a lower-case identifier, or ``dims`` is not a non-empty
            tuple of 2 and/or 3.
    """
    if not name or name != name.strip().lower() or not name.replace("_", "").isalnum():
        raise ValueError(f"block name {name!r} must be a lower-case identifier such as 'vgg'")
    if not isinstance(dims, tuple) or not dims:
        raise ValueError(f"block {name!r}: dims must be a tuple such as (2, 3), got {dims!r}")
    supported = tuple(sorted({check_dims(d) for d in dims}))
    register: Callable[[type[nn.Module]], type[nn.Module]] = BLOCKS.decorator(name)

    def decorate(cls: T) -> T:
        register(cls)
        _DIMS[name] = supported
        _REMOVED.discard(name)
        return cls

    return decorate


def unregister_block(name: str) -> None:
    """Remove a registered family (for tests and plugins that register temporarily)."""
    BLOCKS.unregister(name)
    _DIMS.pop(name, None)
    if name in BUILTIN_DIMS:
        _REMOVED.add(name)


def _declared(name: str) -> bool:
    return name in BUILTIN_DIMS and name not in _REMOVED


def check_block(name: str) -> None:
    """Refuse a name no family is registered under (``GenotypeError`` listing the valid
    names); a built-in name is accepted without importing the families' files."""
    if not _declared(name):
        BLOCKS.get(name)


def block_dims(name: str) -> tuple[int, ...]:
    """The spatial dimensions the family ``name`` supports (``GenotypeError`` if unknown)."""
    return BUILTIN_DIMS[name] if _declared(name) else registered_dims(name)


def registered_dims(name: str) -> tuple[int, ...]:
    """The ``dims`` the family's registration gave (imports the built-in files)."""
    BLOCKS.get(name)
    return _DIMS.get(name, (2,))


def blocks_for(spatial_dims: int) -> tuple[str, ...]:
    """The registered families that support ``spatial_dims``, in registration order."""
    return tuple(n for n in BLOCKS.names() if spatial_dims in block_dims(n))


def check_block_dims(name: str, spatial_dims: int) -> None:
    """Refuse a family in a dimension it does not support.

    Raises:
        GenotypeError: Naming the family, the dimension and the families that support it.
    """
    if spatial_dims not in block_dims(name):
        raise GenotypeError(
            f"block {name!r} supports {' and '.join(f'{d}D' for d in block_dims(name))} "
            f"only, not {spatial_dims}D; {spatial_dims}D blocks: "
            f"{', '.join(blocks_for(spatial_dims)) or 'none'}")


#: The block class registered under a name (``GenotypeError`` listing the valid names).
get_block = BLOCKS.get

#: The registered block names: the built-in families first, in the paper's order.
block_names = BLOCKS.names
