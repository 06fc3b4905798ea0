"""The MB-NAS search space: genotypes, block families, the builder, spaces and costs.

Public API:

* :class:`Genotype`, :class:`Node`: the encoding (10 nodes of a, b, c, d variables).
* :data:`PRESETS`, :func:`preset`: named genotypes (``"unet"``).
* :class:`Baseline`, :func:`architecture_from_dict`: smp baselines usable like genotypes.
* :func:`build_model`, :func:`build_network`: architecture -> ``nn.Module``.
* :func:`get_space`, :func:`kernel_space`, :data:`SPACES`, :class:`SearchSpace`,
  :class:`Variable`: the search spaces of the paper.
* :func:`count_parameters`, :func:`count_macs`, :func:`count_macs_paper` (the paper's
  thop convention), :func:`peak_activation_memory`,
  :func:`cost_report`, :class:`CostReport`: cost figures.
* :func:`register_block`, :func:`get_block`, :func:`block_names`: the block registry.
* :func:`load_architecture`, :func:`load_genotype`: read a file or a name.
* :func:`from_authors_string`, :func:`to_authors_string`: the authors' 40-digit strings.
* :func:`register_space`, :func:`space_names`: the registry of named spaces.
"""

from __future__ import annotations

from mbnas.space.authors import from_authors_string, to_authors_string
from mbnas.space.baselines import (
    BASELINES,
    OLD_BASELINE_NAMES,
    Baseline,
    architecture_from_dict,
    baseline_name,
)
from mbnas.space.blocks import block_names, get_block, register_block, unregister_block
from mbnas.space.build import build_model, build_network
from mbnas.space.cost import (
    CostReport,
    cost_report,
    count_macs,
    count_macs_paper,
    count_parameters,
    format_macs,
    peak_activation_memory,
)
from mbnas.space.count import space_size
from mbnas.space.genotype import KERNELS, N_NODES, Genotype, Node
from mbnas.space.load import load_architecture, load_genotype
from mbnas.space.presets import PRESETS, preset
from mbnas.space.spaces import (
    SPACES,
    SearchSpace,
    Variable,
    get_space,
    kernel_space,
    register_space,
    space_names,
)

__all__ = [
    "BASELINES",
    "OLD_BASELINE_NAMES",
    "baseline_name",
    "KERNELS",
    "N_NODES",
    "PRESETS",
    "SPACES",
    "Baseline",
    "CostReport",
    "Genotype",
    "Node",
    "SearchSpace",
    "Variable",
    "architecture_from_dict",
    "block_names",
    "build_model",
    "build_network",
    "cost_report",
    "count_macs",
    "count_macs_paper",
    "count_parameters",
    "format_macs",
    "from_authors_string",
    "get_block",
    "get_space",
    "kernel_space",
    "load_architecture",
    "load_genotype",
    "peak_activation_memory",
    "preset",
    "register_block",
    "register_space",
    "space_names",
    "space_size",
    "to_authors_string",
    "unregister_block",
]
