"""Search spaces: which variables of the genotype are searched, and which are fixed.

A :class:`SearchSpace` is the full genotype encoding (see :mod:`mbnas.spaces.mbnas.genotype`)
with some variable kinds searched and the others fixed to the values of a base
genotype. The spaces of the paper (section 2.4):

* ``"mbnas"``: everything searched: ``a``, ``b``, ``c``, ``d`` of the 10 nodes, with the
  options of the authors' alphabet (``alphabets/NAS_MIS.txt``): depth at most 3,
  kernels 3, 5, 7, a single skip-connection (``d`` in 0, 1, 2: no "both"; nodes 1 and 2
  take none), and node 10 non-scaling (the authors' last block always is; see
  :mod:`mbnas.spaces.mbnas.authors`).
* ``"mbnas-wide"``: mbnas's earlier, extended space: depth 4, kernels 1, 3, 5, 7, skip
  "both" allowed, node 10 of any cell type.
* ``"macro"``: topology only (``a``, ``d``); blocks fixed to VGG, kernels to 3
  (``get_space("macro", block="vgg2")``: the authors' VGG-only class, 3x3 second conv).
* ``"micro"``: the U-Net topology fixed (the ``"unet"`` preset); ``b`` and ``c`` searched.
* Bilevel-NAS is not a space but a strategy (``--strategy bilevel``): phase 1 searches
  ``"macro"``, phase 2 :func:`kernel_space` of the best phase-1 topology (only ``c``).

Macro, Micro and Bilevel follow the same rules as ``mbnas``. Spaces are registered by
name (:func:`register_space`, duplicates refused); the CLI's choices, the configs and
the report read :func:`space_names`.

**Size and the paper's 1.14e18.** ``mbnas`` holds 453,892 valid topologies x
(4 blocks x 3 kernels) ** 10 = 28,103,796,282,359,808 (2.81e16) genotypes. Counting
every digit combination of the authors' alphabet instead (invalid depth jumps and
dangling skips included, 4 blocks) gives 3.74e18; neither reading gives the paper's
1.14e18, whose counting rules are not published (:data:`PAPER_SIZE_NOTE`).

The ``b`` options are the block families the space names (``SpaceDefinition.blocks``;
the paper's spaces name its four, :data:`~mbnas.spaces.registry.PAPER_BLOCKS`), in that
order. Registering another family (see :mod:`mbnas.nn.blocks`) changes no space
that does not name it.

**The ``a`` variables are searched as the paper defines them**: "a_l = number of
channels" of node l, "the cell type is derived by the difference in number of channels
between two nodes". A search variable ``a_l`` therefore takes the *level* of node l
(options 0..max_depth, i.e. 32 * 2**level channels) and :meth:`SearchSpace.value`
returns ``genotype.levels()[l]``; setting it re-derives the cell types of nodes l and
l+1 (each must stay down, same or up). The genotype itself stores the cell types
(``Node.channels``); both describe the same set of networks, so sizes and sampling do
not depend on this choice. Why not search the stored cell type directly: the levels
sum the cell steps, so changing any single cell type moves node 10 off full
resolution, and no single change of a cell type would ever be valid: the local search
could never change the topology beyond the skips.

**Sampling** is exactly uniform over the valid genotypes of the space: node by node,
each valid (a, d) choice is drawn with probability proportional to the number of
valid completions after it (the DP of :mod:`mbnas.spaces.mbnas.count`), and ``b`` and ``c``
(which never affect validity) uniformly. No rejection, so it costs the same however
rare valid genotypes are. The draws use only the given ``numpy.random.Generator``.
Uniform over genotypes means shallow networks dominate: of the 453,892 topologies of
``mbnas`` only 10,489 reach level 3 (2.3%), so a random start or a random-search sample
is rarely U-Net-deep; start the local search from the ``"unet"`` preset to begin deep.

:meth:`SearchSpace.with_value` never repairs: changing an ``a`` variable that makes a
later ``d`` point at a node that no longer exists (or leaves the levels invalid) gives
None, and the local search skips that option.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

import numpy as np

from mbnas.errors import ConfigError, GenotypeError
from mbnas.nn.blocks import check_block, check_block_dims
from mbnas.spaces.languages import Variable, language
from mbnas.spaces.mbnas.count import TopologyCounter
from mbnas.spaces.mbnas.genotype import (
    CHANNEL_OPTIONS,
    DEFAULT_MAX_DEPTH,
    FIELDS,
    KERNELS,
    SKIPS,
    Genotype,
    Node,
)
from mbnas.spaces.mbnas.presets import preset
from mbnas.spaces.registry import (
    FIXED_BLOCKS,
    MBNAS_LANGUAGE,
    PAPER_BLOCKS,
    PAPER_KERNELS,
    SPACES,
    SpaceDefinition,
    register_space,
    space_definition,
    space_names,
)

__all__ = [
    "SPACES", "SearchSpace", "SpaceDefinition", "Variable", "get_space", "kernel_space",
    "register_space", "space_definition", "space_names",
]
KINDS = ("a", "b", "c", "d")
CELL_OF_STEP = {1: "down", 0: "same", -1: "up"}


class SearchSpace:
    """Genotypes with the ``searched`` kinds free and the other kinds fixed to ``base``.

    Args:
        name: The space's name (e.g. "mbnas").
        searched: The variable kinds searched, a subset of "abcd".
        base: The genotype supplying the values of the kinds that are not searched.
        max_depth: The deepest level allowed.
        blocks: The ``b`` options (registered block names); default: the paper's four.
        kernels: The ``c`` options.
        skips: The ``d`` options.
        last_same: Whether the last node must be a non-scaling cell (the authors').
        first_skip_node: Nodes before it take no skip (the authors' alphabet gives
            nodes 1 and 2 a single skip option, none: 3).
        spatial_dims: 2 (images) or 3 (volumes): the networks it builds.

    Raises:
        ConfigError: If the fixed part of ``base`` is not valid with ``max_depth``, or
            a block family it uses is not registered or does not support
            ``spatial_dims``.
    """

    def __init__(
        self,
        name: str,
        searched: Iterable[str],
        base: Genotype,
        max_depth: int = DEFAULT_MAX_DEPTH,
        blocks: tuple[str, ...] = PAPER_BLOCKS,
        kernels: tuple[int, ...] = KERNELS,
        skips: tuple[int, ...] = SKIPS,
        last_same: bool = False,
        first_skip_node: int = 1,
        spatial_dims: int = 2,
    ) -> None:
        self.name = name
        self.spatial_dims = spatial_dims
        self.searched = frozenset(searched)
        if not self.searched <= set(KINDS):
            raise ConfigError(f"space {name!r}: searched kinds must be among a, b, c, d")
        self.base = base
        self.max_depth = max_depth
        self.n_nodes = len(base.nodes)
        self.options: dict[str, tuple] = {
            "a": tuple(range(max_depth + 1)),  # the level of the node (see module doc)
            "b": tuple(blocks),
            "c": tuple(kernels),
            "d": tuple(skips),
        }
        self.last_same = last_same
        self.first_skip_node = first_skip_node
        used = self.options["b"] if "b" in self.searched else ()
        if spatial_dims != 2:  # the fixed blocks too (2D: as before, the builder checks)
            used = (*used, *(n.block for n in base.nodes))
        for block in dict.fromkeys(used):
            try:
                check_block(block)
                check_block_dims(block, spatial_dims)
            except GenotypeError as exc:
                raise ConfigError(f"space {name!r} searches block {block!r}: {exc}"
                                  ) from None
        if not {"a", "d"} & self.searched:
            try:
                base.validate(max_depth, self.n_nodes)
            except GenotypeError as exc:
                raise ConfigError(
                    f"space {name!r} fixes a topology that is invalid with max_depth "
                    f"{max_depth}: {exc}"
                ) from None
        channel_options = [CHANNEL_OPTIONS if "a" in self.searched else (n.channels,)
                           for n in base.nodes]
        if last_same and "a" in self.searched:
            channel_options[-1] = ("same",)
        self._counter = TopologyCounter(
            self.n_nodes,
            max_depth,
            channel_options,
            [self._allowed("d", n) if i >= first_skip_node else (0,)
             for i, n in enumerate(base.nodes, start=1)],
        )
        self._variables = tuple(
            Variable(f"{kind}{i}", i, kind, self.options[kind])
            for i in range(1, self.n_nodes + 1)
            for kind in KINDS
            if kind in self.searched
        )

    def _allowed(self, kind: str, node: Node) -> tuple:
        return self.options[kind] if kind in self.searched else (getattr(node, FIELDS[kind]),)

    def _with_level(self, genotype: Genotype, index: int, level: int) -> list[Node] | None:
        """Nodes with node ``index`` moved to ``level``: cells index and index+1 re-derived."""
        levels = list(genotype.levels())
        levels[index] = level
        nodes = list(genotype.nodes)
        for i in (index, index + 1):
            if i <= len(nodes):
                step = levels[i] - levels[i - 1]
                if step not in CELL_OF_STEP:
                    return None
                nodes[i - 1] = replace(nodes[i - 1], channels=CELL_OF_STEP[step])
        return nodes

    @property
    def counter(self) -> TopologyCounter:
        """The DP over valid (a, d) choices node by node (read-only use): what a sampler
        that is not uniform (the DNAS distribution, :mod:`mbnas.scoring.dnas_arch`) masks
        its options with."""
        return self._counter

    def __repr__(self) -> str:
        return (f"SearchSpace({self.name!r}, searched={''.join(sorted(self.searched))}, "
                f"max_depth={self.max_depth}, size={self.size()})")

    # -- the interface used by the search strategies -----------------------------------
    def variables(self) -> tuple[Variable, ...]:
        """The searched variables, by node then kind (a1, b1, c1, d1, a2, ...)."""
        return self._variables

    def value(self, genotype: Genotype, variable: Variable) -> Any:
        """The current option of ``variable`` in ``genotype`` (for ``a``: the level)."""
        if variable.kind == "a":
            return genotype.levels()[variable.node]
        return getattr(genotype.nodes[variable.node - 1], FIELDS[variable.kind])

    def with_value(self, genotype: Genotype, variable: Variable, value: Any) -> Genotype | None:
        """``genotype`` with one variable changed, or None if that is invalid here.

        Raises:
            GenotypeError: If ``value`` is not an option of ``variable`` at all.
        """
        if value not in variable.options:
            raise GenotypeError(
                f"{value!r} is not an option of {variable.name}: {variable.options}"
            )
        nodes: list[Node]
        try:
            if variable.kind == "a":
                leveled = self._with_level(genotype, variable.node, value)
                if leveled is None:
                    return None
                nodes = leveled
            else:
                nodes = list(genotype.nodes)
                nodes[variable.node - 1] = replace(
                    nodes[variable.node - 1], **{FIELDS[variable.kind]: value}
                )
            changed = Genotype(tuple(nodes))
        except GenotypeError:
            return None
        return changed if self.contains(changed) else None

    def neighbours(self, genotype: Genotype) -> list[Genotype]:
        """All valid genotypes of this space that differ in exactly one searched variable.

        Ordered by variable (as :meth:`variables`), then option.
        """
        out = []
        for variable in self._variables:
            current = self.value(genotype, variable)
            for option in variable.options:
                if option != current:
                    changed = self.with_value(genotype, variable, option)
                    if changed is not None:
                        out.append(changed)
        return out

    def sample(self, rng: np.random.Generator) -> Genotype:
        """A uniformly random valid genotype of this space (see the module docstring)."""
        if self.size() == 0:
            raise ConfigError(f"space {self.name!r} holds no valid genotype")
        state = self._counter.start()
        nodes = []
        for i, base_node in enumerate(self.base.nodes, start=1):
            choices = self._counter.choices(i, state)
            weights = [self._counter.completions(i + 1, nxt) for _, _, nxt in choices]
            r = _randbelow(rng, sum(weights))
            pick = 0
            while r >= weights[pick]:
                r -= weights[pick]
                pick += 1
            a, d, state = choices[pick]
            block, kernel = base_node.block, base_node.kernel
            if "b" in self.searched:
                block = self.options["b"][int(rng.integers(len(self.options["b"])))]
            if "c" in self.searched:
                kernel = self.options["c"][int(rng.integers(len(self.options["c"])))]
            nodes.append(Node(a, block, kernel, d))
        return Genotype(tuple(nodes))

    def contains(self, genotype: Genotype) -> bool:
        """Whether ``genotype`` is a valid genotype of this space."""
        if not isinstance(genotype, Genotype) or len(genotype.nodes) != self.n_nodes:
            return False
        try:
            genotype.validate(self.max_depth, self.n_nodes)
        except GenotypeError:
            return False
        if self.last_same and genotype.nodes[-1].channels != "same":
            return False
        if any(n.skip for n in genotype.nodes[:self.first_skip_node - 1]):
            return False
        for node, base_node in zip(genotype.nodes, self.base.nodes, strict=True):
            for kind, field in FIELDS.items():
                value = getattr(node, field)
                if kind in self.searched:
                    # a (levels) is covered by validate(); b, c and d may be restricted.
                    if kind in ("b", "c", "d") and value not in self.options[kind]:
                        return False
                elif value != getattr(base_node, field):
                    return False
        return True

    def size(self) -> int:
        """Exact number of valid genotypes in this space."""
        free = math.prod(len(self.options[k]) for k in ("b", "c") if k in self.searched)
        return self._counter.total() * free ** self.n_nodes

    def summary(self) -> dict[str, Any]:
        """A JSON-ready description (name, searched kinds, max_depth, size, fixed base)."""
        return {
            "name": self.name,
            "searched": sorted(self.searched),
            "max_depth": self.max_depth,
            "size": self.size(),
            "options": {k: list(self.options[k]) for k in sorted(self.searched)},
            "base": self.base.to_dict(),
        }


def get_space(name: str, max_depth: int | None = None,
              block: str | None = None) -> Any:
    """The registered search space ``name`` (see :func:`space_names`).

    A :class:`SearchSpace` of genotypes for the MB-NAS language; a space of another
    architecture language (``SpaceDefinition.language``) is built by its codec.

    Args:
        name: A registered space name.
        max_depth: The deepest level allowed; default: the space's own (3: the authors' cap).
        block: For a space that fixes the blocks (``macro``): the block of every node
            instead of the base's (:data:`FIXED_BLOCKS`: ``vgg2`` is the authors'
            VGG-only class); None keeps the base's.

    Raises:
        ConfigError: If the name is unknown, the space is empty with ``max_depth``, or
            ``block`` is given for a space that searches blocks or is not a fixed block.
    """
    definition = space_definition(name)
    if definition.language != MBNAS_LANGUAGE:  # another language builds its own spaces
        return language(definition.language).space(definition, max_depth, block)
    if max_depth is None:
        max_depth = DEFAULT_MAX_DEPTH if definition.max_depth is None else definition.max_depth
    if isinstance(max_depth, bool) or not isinstance(max_depth, int) or max_depth < 0:
        raise ConfigError(f"max_depth must be an integer >= 0, got {max_depth!r}")
    base = preset(definition.base)
    if block is not None:
        base = with_block(base, block, name, "b" in definition.searched)
    return SearchSpace(name, definition.searched, base, max_depth,
                       blocks=definition.blocks, kernels=definition.kernels or KERNELS,
                       skips=definition.skips or SKIPS, last_same=definition.last_same,
                       first_skip_node=definition.first_skip_node,
                       spatial_dims=definition.spatial_dims)


def with_block(genotype: Genotype, block: str, space: str = "",
               searched: bool = False) -> Genotype:
    """``genotype`` with every node's block set to ``block`` (one of :data:`FIXED_BLOCKS`).

    Raises ConfigError when ``block`` is no fixed-block option or the space searches blocks.
    """
    if block not in FIXED_BLOCKS:
        raise ConfigError(f"block {block!r} is not one of {', '.join(FIXED_BLOCKS)}")
    if searched:
        raise ConfigError(f"block {block!r}: the {space} space searches the blocks; a fixed "
                          "block is for spaces that fix them (macro, and bilevel's phases)")
    return Genotype(tuple(replace(n, block=block) for n in genotype.nodes))


def kernel_space(topology: Genotype, max_depth: int | None = None,
                 kernels: tuple[int, ...] = PAPER_KERNELS) -> SearchSpace:
    """Bilevel-NAS phase 2: only the kernel sizes (``c``) searched, the rest fixed.

    Args:
        topology: The best phase-1 genotype; its cells, blocks and skips are kept.
        max_depth: The depth limit to check it against; default: the larger of 4 and
            the topology's own depth (phase 2 never changes levels).
        kernels: The ``c`` options (the paper's 3, 5, 7).

    Raises:
        GenotypeError: If ``topology`` is not a valid genotype with ``max_depth``.
    """
    if max_depth is None:
        max_depth = max(DEFAULT_MAX_DEPTH, topology.depth())
    topology.validate(max_depth, len(topology.nodes))
    return SearchSpace("bilevel-kernel", "c", topology, max_depth, kernels=kernels)


def _randbelow(rng: np.random.Generator, n: int) -> int:
    """A uniform integer in [0, n), exact also for n beyond 64 bits."""
    if n <= 2 ** 62:
        return int(rng.integers(0, n))
    bits = n.bit_length()
    words = (bits + 31) // 32
    while True:
        r = 0
        for w in rng.integers(0, 2 ** 32, size=words, dtype=np.uint64):
            r = (r << 32) | int(w)
        r >>= words * 32 - bits
        if r < n:
            return r
