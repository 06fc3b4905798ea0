"""Block families of the MB-NAS search space, one module per family, registered by name.

The four families of the paper are imported here in the paper's order (vgg, residual,
dense, inception), which fixes the order of the options of every ``b`` variable. Every
other module in this package is then imported automatically (alphabetically), so that

**adding a fifth family (e.g. a transformer block) is one new file**
``src/mbnas/space/blocks/<family>.py`` holding an ``nn.Module`` with the constructor
``(in_channels, out_channels, kernel_size, stride=1)`` (spatial size kept for kernels
1, 3, 5, 7 with stride 1, halved with stride 2: a downscaling cell is its block with
stride 2)
decorated with ``@register_block("<family>")``. Nothing else changes: the builder looks
blocks up by name, and the search spaces and the counting take their ``b`` options
from :func:`block_names`. Code outside the package can also call ``register_block``
before creating a search space. A family registered this way enlarges the ``mbnas``
and ``micro`` spaces (and their exact sizes) accordingly; a *variant* (``vgg2``, the
authors' VGG-only block, ``register_block(name, variant=True)``) does not.
"""

from __future__ import annotations

import importlib
import pkgutil

from mbnas.space.blocks.registry import (
    all_block_names,
    block_names,
    get_block,
    register_block,
    unregister_block,
)

PAPER_FAMILIES = ("vgg", "residual", "dense", "inception")
_NOT_FAMILIES = {"registry", "common"}

for _module in PAPER_FAMILIES + tuple(
    sorted(m.name for m in pkgutil.iter_modules(__path__))
):
    if _module not in _NOT_FAMILIES:
        importlib.import_module(f"{__name__}.{_module}")  # registers on first import only

__all__ = ["all_block_names", "block_names", "get_block", "register_block", "unregister_block"]
