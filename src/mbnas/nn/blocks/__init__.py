"""Block families of the MB-NAS search space, one module per family, registered by name.

The four families of the paper are ``vgg``, ``residual``, ``dense`` and ``inception``
(one file each, registered with ``@register_block``; :data:`BLOCKS` lists their
modules). A new family is one file holding an ``nn.Module`` with the constructor
``(in_channels, out_channels, kernel_size, stride=1, spatial_dims=2)`` (spatial size
kept for kernels 1, 3, 5, 7 with stride 1, halved with stride 2) decorated with
``@register_block("<family>", dims=(2, 3))`` (``dims`` says which spatial dimensions it
supports; 2D only by default, and then ``spatial_dims`` may be left out), plus its
module in :data:`BLOCKS`'s built-ins (or an import of the file, for a plugin).
Registering it changes no existing space: a space searches only the families it names
(``SpaceDefinition.blocks``); see ``docs/extending.md``. ``vgg2``, the authors' VGG-only
block (second convolution 3x3), is registered the same way and named by no space:
Macro/Bilevel-NAS use it with ``--block vgg2``.
"""

from __future__ import annotations

from mbnas.nn.blocks.registry import (
    BLOCKS,
    BUILTIN_DIMS,
    block_dims,
    block_names,
    blocks_for,
    check_block,
    check_block_dims,
    get_block,
    register_block,
    unregister_block,
)

__all__ = ["BLOCKS", "BUILTIN_DIMS", "block_dims", "block_names", "blocks_for", "check_block",
           "check_block_dims",
           "get_block", "register_block", "unregister_block"]
