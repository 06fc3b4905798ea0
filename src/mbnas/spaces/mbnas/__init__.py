"""The MB-NAS architecture language: genotypes, the builder, presets and its spaces.

Public API:

* :class:`Genotype`, :class:`Node`: the encoding (10 nodes of a, b, c, d variables).
* :data:`PRESETS`, :func:`preset`: named genotypes (``"unet"``).
* :class:`Baseline`, :func:`architecture_from_dict`: smp baselines usable like genotypes.
* :func:`build_model`, :func:`build_network`: architecture -> ``nn.Module``.
* :func:`get_space`, :func:`kernel_space`, :data:`SPACES`, :class:`SearchSpace`,
  :class:`Variable`: the search spaces of the paper.
* Cost figures live in :mod:`mbnas.costs`.
* :func:`register_block`, :func:`get_block`, :func:`block_names`: the block registry
  (:mod:`mbnas.nn.blocks`).
* :func:`load_architecture`, :func:`load_genotype`: read a file or a name.
* :func:`from_authors_string`, :func:`to_authors_string`: the authors' 40-digit strings.
* :func:`register_space`, :func:`space_names`: the registry of named spaces.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mbnas.nn.blocks import block_names, get_block, register_block, unregister_block
from mbnas.spaces.mbnas.authors import from_authors_string, to_authors_string
from mbnas.spaces.mbnas.baselines import (
    BASELINES,
    OLD_BASELINE_NAMES,
    Baseline,
    architecture_from_dict,
    baseline_name,
)
from mbnas.spaces.mbnas.count import space_size
from mbnas.spaces.mbnas.definitions import (
    SPACES,
    SearchSpace,
    Variable,
    get_space,
    kernel_space,
    register_space,
    space_names,
)
from mbnas.spaces.mbnas.genotype import KERNELS, N_NODES, Genotype, Node
from mbnas.spaces.mbnas.load import load_architecture, load_genotype
from mbnas.spaces.mbnas.presets import PRESETS, preset

if TYPE_CHECKING:
    from mbnas.spaces.mbnas.build import build_model, build_network

#: Loaded on first use (PEP 562): the builder imports torch, which `mbnas space info`
#: and the other light commands must not pay for (issue 35.8).
_LAZY = {"build_model", "build_network"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from mbnas.spaces.mbnas import build

        return getattr(build, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "BASELINES",
    "OLD_BASELINE_NAMES",
    "baseline_name",
    "KERNELS",
    "N_NODES",
    "PRESETS",
    "SPACES",
    "Baseline",
    "Genotype",
    "Node",
    "SearchSpace",
    "Variable",
    "architecture_from_dict",
    "block_names",
    "build_model",
    "build_network",
    "from_authors_string",
    "get_block",
    "get_space",
    "kernel_space",
    "load_architecture",
    "load_genotype",
    "preset",
    "register_block",
    "register_space",
    "space_names",
    "space_size",
    "to_authors_string",
    "unregister_block",
]
