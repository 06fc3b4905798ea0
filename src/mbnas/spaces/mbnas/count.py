"""Exact size of a search space by dynamic programming, and a brute-force check.

Rules counted (those of :mod:`mbnas.spaces.mbnas.genotype`): n nodes after the stem; each node
chooses a cell type ``a`` (down, same, up), a block ``b``, a kernel ``c`` and a skip
source ``d`` (0 none, 1 nearest, 2 second-nearest, 3 both, among the candidates at the
predecessor's level: nodes 0..l-3, and the stem for node 2); levels stay within
0..max_depth and the last node ends at level 0; ``d`` may only point at nodes that
exist. ``b`` and ``c`` never affect validity, so they multiply the count of valid
topologies (a, d) by (#blocks * #kernels) ** n.

The DP walks the nodes in order. Its state before node l is (level of node l-1, level
of node l-2, per-level counts of nodes 0..l-3, each capped at 2), which is all that
decides which ``d`` values are valid for node l and later (2 and 3 need two
candidates, so counts beyond 2 make no difference). ``completions(l, state)`` counts
the valid (a, d) choices for nodes l..n; it also drives the exactly uniform sampling
in :mod:`mbnas.spaces.mbnas.definitions`. The sizes of the named spaces, and how they compare with
the paper's 1.14e18, are in :mod:`mbnas.spaces.mbnas.definitions`.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence

from mbnas.errors import GenotypeError
from mbnas.spaces.mbnas.genotype import (
    CHANNEL_OPTIONS,
    DEFAULT_MAX_DEPTH,
    KERNELS,
    LEVEL_STEP,
    N_NODES,
    SKIPS,
    Genotype,
    Node,
    skips_needed,
)
from mbnas.spaces.registry import PAPER_BLOCKS

State = tuple[int, int, tuple[int, ...]]


class TopologyCounter:
    """Counts valid (a, d) assignments, optionally with per-node restricted options.

    Args:
        n_nodes: Number of nodes after the stem.
        max_depth: Deepest level allowed.
        channel_options: Per node (index 0 = node 1), the allowed ``a`` values.
        skip_options: Per node, the allowed ``d`` values.
    """

    def __init__(
        self,
        n_nodes: int = N_NODES,
        max_depth: int = DEFAULT_MAX_DEPTH,
        channel_options: Sequence[Sequence[str]] | None = None,
        skip_options: Sequence[Sequence[int]] | None = None,
    ) -> None:
        if n_nodes < 1 or max_depth < 0:
            raise ValueError(f"need n_nodes >= 1 and max_depth >= 0, got {n_nodes}, {max_depth}")
        self.n_nodes = n_nodes
        self.max_depth = max_depth
        self.channel_options = tuple(
            tuple(o) for o in (channel_options or [CHANNEL_OPTIONS] * n_nodes)
        )
        self.skip_options = tuple(tuple(o) for o in (skip_options or [SKIPS] * n_nodes))
        if len(self.channel_options) != n_nodes or len(self.skip_options) != n_nodes:
            raise ValueError("channel_options and skip_options need one entry per node")
        self._memo: dict[tuple[int, State], int] = {}

    def start(self) -> State:
        """The state before node 1: the stem (level 0) is the predecessor; no node before it."""
        return (0, -1, (0,) * (self.max_depth + 1))

    def candidates(self, node: int, state: State) -> int:
        """How many skip candidates node ``node`` has in ``state`` (capped at 2)."""
        level, before, counts = state
        if node == 1:
            return 0
        # The stem is a candidate of node 2 although it is node 2's predecessor's input.
        extra = 1 if node == 2 and before == level else 0
        return min(2, counts[level] + extra)

    def choices(self, node: int, state: State) -> list[tuple[str, int, State]]:
        """Valid (a, d, next state) choices for ``node`` (1-based) in ``state``."""
        level, before, counts = state
        n_candidates = self.candidates(node, state)
        bumped = list(counts)
        if before >= 0:
            bumped[before] = min(2, bumped[before] + 1)  # node l-2 becomes a candidate
        after = tuple(bumped)
        skips = [d for d in self.skip_options[node - 1] if skips_needed(d) <= n_candidates]
        out: list[tuple[str, int, State]] = []
        for a in self.channel_options[node - 1]:
            new_level = level + LEVEL_STEP[a]
            if not 0 <= new_level <= self.max_depth:
                continue
            out.extend((a, d, (new_level, level, after)) for d in skips)
        return out

    def completions(self, node: int, state: State) -> int:
        """Number of valid (a, d) assignments of nodes ``node..n`` from ``state``."""
        if node > self.n_nodes:
            return 1 if state[0] == 0 else 0
        memo_key = (node, state)
        if memo_key not in self._memo:
            self._memo[memo_key] = sum(
                self.completions(node + 1, nxt) for _, _, nxt in self.choices(node, state)
            )
        return self._memo[memo_key]

    def total(self) -> int:
        """Number of valid topologies."""
        return self.completions(1, self.start())


def space_size(
    n_nodes: int = N_NODES,
    max_depth: int = DEFAULT_MAX_DEPTH,
    n_blocks: int | None = None,
    n_kernels: int = len(KERNELS),
) -> int:
    """Exact number of valid genotypes with every variable free.

    Args:
        n_nodes: Number of nodes after the stem.
        max_depth: Deepest level allowed.
        n_blocks: Number of block families; default: the paper's four.
        n_kernels: Number of kernel sizes.
    """
    if n_blocks is None:
        n_blocks = len(PAPER_BLOCKS)
    return TopologyCounter(n_nodes, max_depth).total() * (n_blocks * n_kernels) ** n_nodes


def enumerate_genotypes(
    n_nodes: int,
    max_depth: int,
    blocks: Sequence[str] = ("vgg",),
    kernels: Sequence[int] = (3,),
) -> Iterator[Genotype]:
    """Yield every valid genotype of a (small) space by brute force.

    Every combination of per-node options is built as a :class:`Genotype` and kept
    when it passes construction and :meth:`Genotype.validate`: this checks the DP
    against the genotype's own rules. The work is (3 * #blocks * #kernels * 4) **
    n_nodes, so keep the space tiny (e.g. 4 nodes, one block, one kernel).
    """
    options = [
        Node(a, b, c, d)
        for a, b, c, d in itertools.product(CHANNEL_OPTIONS, blocks, kernels, SKIPS)
    ]
    for nodes in itertools.product(options, repeat=n_nodes):
        try:
            genotype = Genotype(nodes)
            genotype.validate(max_depth, n_nodes)
        except GenotypeError:
            continue
        yield genotype


def brute_force_size(
    n_nodes: int, max_depth: int, blocks: Sequence[str] = ("vgg",), kernels: Sequence[int] = (3,)
) -> int:
    """Count :func:`enumerate_genotypes`."""
    return sum(1 for _ in enumerate_genotypes(n_nodes, max_depth, blocks, kernels))
