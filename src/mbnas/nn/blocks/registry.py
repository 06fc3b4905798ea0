"""The block registry: block families registered by name, looked up by name.

A block family is a small ``nn.Module`` whose constructor takes
``(in_channels, out_channels, kernel_size, stride=1)`` and whose forward keeps the
spatial size (stride 1) or halves it (stride 2, in a downscaling cell). Genotypes refer
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


def register_block(name: str) -> Callable[[T], T]:
    """Class decorator that registers a block family under ``name`` in :data:`BLOCKS`.

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
    return BLOCKS.decorator(name)


def unregister_block(name: str) -> None:
    """Remove a registered family (for tests and plugins that register temporarily)."""
    BLOCKS.unregister(name)


#: The block class registered under a name (``GenotypeError`` listing the valid names).
get_block = BLOCKS.get

#: The registered block names: the built-in families first, in the paper's order.
block_names = BLOCKS.names
