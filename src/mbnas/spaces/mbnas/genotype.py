"""Genotypes: the serialisable description of one MB-NAS network.

A network is a stem followed by ``N_NODES`` (10) nodes, numbered 1..10, then a 1x1
head. The wiring is the authors' network class (``NAS_WNet_blocks_convs``, see
docs/fidelity.md); :mod:`mbnas.spaces.mbnas.authors` converts to and from their 40-digit string.

* The **stem** is "node 0": a fixed VGG block (two 3x3 conv + BatchNorm + LeakyReLU)
  from the input channels to 32 channels at full resolution (level 0).
* Each **node** l holds the four categorical variables of the paper, named by kind
  letter and node number (``a3``, ``b3``, ``c3``, ``d3``):

  - ``a`` (:attr:`Node.channels`): channels relative to node l-1. ``"down"``: a
    downscaling cell (resolution halved by a stride-2 convolution inside the block,
    channels doubled); ``"same"``: a non-scaling cell; ``"up"``: an upscaling cell (a
    2x2 transposed convolution halves the channels of its input, then the block).
  - ``b`` (:attr:`Node.block`): the block family, a name registered in
    :mod:`mbnas.nn.blocks` ("vgg", "residual", "dense", "inception").
  - ``c`` (:attr:`Node.kernel`): the convolution kernel size, one of 1, 3, 5, 7.
  - ``d`` (:attr:`Node.skip`): the skip-connection source, concatenated onto the
    output of node l-1 *at node l-1's level, before node l resamples* (the authors'
    wiring). Candidates are the earlier nodes at node l-1's level, nearest first,
    excluding node l-1 itself and node l-2 (node l-1's own input), but the stem is a
    candidate from node 2 on (the authors' rule). 0: none; 1: the nearest candidate;
    2: the second-nearest; 3: both (only in the ``mbnas-wide`` space). Node 1 has no
    candidates.

* **Level** (resolution depth) of node l: level(l-1) + 1 for down, + 0 for same, - 1
  for up; the stem is at level 0. A node at level k works at input/2**k.
  **Channels** = min(32 * 2**level, 512).
* **Valid** genotypes: no level below 0; node 10 ends at level 0 (full resolution);
  every ``d`` points at nodes that exist (1 needs at least one candidate, 2 and 3 need
  two); no level deeper than ``max_depth`` (a search-space parameter); exactly 10
  nodes for the spaces of the paper.

Everything except ``max_depth`` and the node count is checked when a genotype is
constructed; :meth:`Genotype.validate` checks those two. Genotypes are frozen and
hashable; :attr:`Genotype.key` is a stable hash of the canonical JSON and of
:data:`BUILDER_VERSION`, so results trained with another builder never share a key.
"""

from __future__ import annotations

import hashlib
import json
import numbers
from dataclasses import dataclass
from typing import Any

from mbnas.errors import GenotypeError
from mbnas.nn.blocks import check_block

N_NODES = 10
#: What a genotype means as a network. Version 1 (before the authors' wiring) resampled
#: before concatenating skips and used MaxPool; its keys were the plain JSON hash.
BUILDER_VERSION = 2
DEFAULT_MAX_DEPTH = 4
BASE_CHANNELS = 32
MAX_CHANNELS = 512
# Far above any space's node count (the paper's: 10): a hostile file cannot make a
# network of thousands of nodes.
MAX_NODES = 64
CHANNEL_OPTIONS: tuple[str, ...] = ("down", "same", "up")
KERNELS: tuple[int, ...] = (1, 3, 5, 7)
SKIPS: tuple[int, ...] = (0, 1, 2, 3)
LEVEL_STEP = {"down": 1, "same": 0, "up": -1}
#: The genotype field holding each variable kind of the paper.
FIELDS = {"a": "channels", "b": "block", "c": "kernel", "d": "skip"}


def level_text(level: int) -> str:
    """Human-readable resolution of a level: 'input/8' for 3, 'full resolution' for 0."""
    if level == 0:
        return "full resolution"
    return f"input/{2 ** level}" if level > 0 else f"input x{2 ** -level}"


def skip_candidates(levels: tuple[int, ...], node: int) -> tuple[int, ...]:
    """Earlier nodes that node ``node`` may take a skip from, nearest first.

    The skip is concatenated onto the output of node ``node - 1``, so candidates are
    at that node's level: nodes ``j <= node - 3`` (``node - 1`` is the tensor itself,
    ``node - 2`` its input), and the stem (node 0) from node 2 on, as in the authors'
    ``range(max(0, i - 2), -1, -1)`` with their i = node - 1.

    Args:
        levels: Levels of nodes 0..n (stem included), as from :meth:`Genotype.levels`.
        node: A node number (1..n).
    """
    if node < 2:
        return ()
    return tuple(j for j in range(max(0, node - 3), -1, -1) if levels[j] == levels[node - 1])


def skips_needed(skip: int) -> int:
    """How many candidates a skip value needs: 0 for 0, 1 for 1, 2 for 2 and 3."""
    return min(skip, 2)


def _check_int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise GenotypeError(f"{what} must be an integer, got {value!r}")
    return int(value)


@dataclass(frozen=True)
class Node:
    """One node: the cell type, block family, kernel size and skip source (a, b, c, d)."""

    channels: str
    block: str
    kernel: int
    skip: int

    def __post_init__(self) -> None:
        if self.channels not in CHANNEL_OPTIONS:
            raise GenotypeError(
                f"channels {self.channels!r} is not one of {', '.join(CHANNEL_OPTIONS)}"
            )
        if not isinstance(self.block, str):
            raise GenotypeError(f"block must be a name, got {self.block!r}")
        check_block(self.block)  # raises with the list of valid names
        # Plain ints only (numpy integers are converted), so that JSON and keys are stable.
        object.__setattr__(self, "kernel", _check_int(self.kernel, "kernel"))
        object.__setattr__(self, "skip", _check_int(self.skip, "skip"))
        if self.kernel not in KERNELS:
            raise GenotypeError(
                f"kernel {self.kernel} is not one of {', '.join(map(str, KERNELS))}"
            )
        if self.skip not in SKIPS:
            raise GenotypeError(
                f"skip {self.skip} is not one of {', '.join(map(str, SKIPS))} "
                "(0 none, 1 nearest, 2 second-nearest, 3 both)"
            )

    def to_dict(self) -> dict[str, Any]:
        return {"channels": self.channels, "block": self.block, "kernel": self.kernel,
                "skip": self.skip}

    @classmethod
    def from_dict(cls, d: Any) -> Node:
        if not isinstance(d, dict):
            raise GenotypeError(f"a node must be a mapping, got {d!r}")
        missing = [f for f in ("channels", "block", "kernel", "skip") if f not in d]
        extra = sorted(set(d) - {"channels", "block", "kernel", "skip"})
        if missing or extra:
            raise GenotypeError(
                f"a node needs exactly the fields channels, block, kernel, skip; "
                f"missing {missing}, unexpected {extra}"
            )
        return cls(d["channels"], d["block"], d["kernel"], d["skip"])


@dataclass(frozen=True)
class Genotype:
    """A network of the MB-NAS space: the nodes 1..n after the stem (node 0)."""

    nodes: tuple[Node, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.nodes, tuple):
            if not isinstance(self.nodes, list):
                raise GenotypeError(f"nodes must be a list of nodes, got {self.nodes!r}")
            object.__setattr__(self, "nodes", tuple(self.nodes))
        if not self.nodes:
            raise GenotypeError("a genotype needs at least one node")
        if len(self.nodes) > MAX_NODES:
            raise GenotypeError(f"a genotype has at most {MAX_NODES} nodes, got "
                                f"{len(self.nodes)}")
        for i, node in enumerate(self.nodes, start=1):
            if not isinstance(node, Node):
                raise GenotypeError(f"node {i} is not a Node: {node!r}")
        levels = self.levels()
        for i in range(1, len(levels)):
            if levels[i] < 0:
                raise GenotypeError(
                    f"node {i} goes up to level {levels[i]} ({level_text(levels[i])}), "
                    "above full resolution: an 'up' cell needs a deeper predecessor"
                )
        n = len(self.nodes)
        if levels[n] != 0:
            raise GenotypeError(
                f"the last node (node {n}) ends at level {levels[n]} "
                f"({level_text(levels[n])}); it must end at full resolution (level 0)"
            )
        for i, node in enumerate(self.nodes, start=1):
            found = skip_candidates(levels, i)
            if len(found) < skips_needed(node.skip):
                names = ", ".join(f"node {j}" for j in found)
                raise GenotypeError(
                    f"node {i}: skip {node.skip} needs {skips_needed(node.skip)} earlier "
                    f"node(s) at node {i - 1}'s level {levels[i - 1]} other than nodes "
                    f"{i - 1} and {i - 2}, found "
                    f"{len(found)}{f' ({names})' if found else ''}"
                )

    # -- structure -------------------------------------------------------------------
    def levels(self) -> tuple[int, ...]:
        """Levels of nodes 0..n (index 0 is the stem, at level 0)."""
        out = [0]
        for node in self.nodes:
            out.append(out[-1] + LEVEL_STEP[node.channels])
        return tuple(out)

    def channels(self, base: int = BASE_CHANNELS, cap: int = MAX_CHANNELS) -> tuple[int, ...]:
        """Output channels of nodes 0..n: ``min(base * 2**level, cap)``."""
        return tuple(min(base * 2 ** level, cap) for level in self.levels())

    def depth(self) -> int:
        """The deepest level reached; inputs must be divisible by ``2**depth``."""
        return max(self.levels())

    def skip_sources(self, index: int) -> tuple[int, ...]:
        """Nodes whose outputs are concatenated onto node ``index - 1``'s, feeding node ``index``.

        Args:
            index: A node number, 1..n.
        """
        if not 1 <= index <= len(self.nodes):
            raise GenotypeError(
                f"node {index} does not exist (nodes are 1..{len(self.nodes)})"
            )
        found = skip_candidates(self.levels(), index)
        skip = self.nodes[index - 1].skip
        return {0: (), 1: found[:1], 2: found[1:2], 3: found[:2]}[skip]

    def validate(self, max_depth: int = DEFAULT_MAX_DEPTH, n_nodes: int | None = N_NODES) -> None:
        """Check the rules that depend on the search space.

        Args:
            max_depth: The deepest level allowed.
            n_nodes: The required number of nodes, or None for any.

        Raises:
            GenotypeError: Naming the first node that breaks a rule.
        """
        if n_nodes is not None and len(self.nodes) != n_nodes:
            raise GenotypeError(
                f"the genotype has {len(self.nodes)} nodes; the search space needs {n_nodes}"
            )
        for i, level in enumerate(self.levels()):
            if level > max_depth:
                raise GenotypeError(
                    f"node {i} goes to level {level} ({level_text(level)}), "
                    f"deeper than max_depth {max_depth}"
                )

    def describe(self, base: int = BASE_CHANNELS) -> str:
        """One line per node: cell type, level, channels, block, kernel and skips."""
        levels, chans = self.levels(), self.channels(base=base)
        lines = [f"node  0  stem       level 0  {chans[0]:>3} ch  vgg k3"]
        for i, node in enumerate(self.nodes, start=1):
            src = self.skip_sources(i)
            skip = ("  skip <- " + ", ".join(f"node {j}" for j in src)) if src else ""
            lines.append(
                f"node {i:>2}  {node.channels:<9}  level {levels[i]}  {chans[i]:>3} ch  "
                f"{node.block} k{node.kernel}{skip}"
            )
        return "\n".join(lines)

    # -- serialisation ---------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: ``{"kind": "genotype", "nodes": [{...}, ...]}``."""
        return {"kind": "genotype", "nodes": [node.to_dict() for node in self.nodes]}

    @classmethod
    def from_dict(cls, d: Any) -> Genotype:
        """Inverse of :meth:`to_dict` (the "kind" field is optional).

        Raises:
            GenotypeError: If the dict is not a valid genotype, saying why.
        """
        if not isinstance(d, dict) or "nodes" not in d:
            raise GenotypeError("a genotype must be a mapping with a 'nodes' list")
        if d.get("kind", "genotype") != "genotype":
            raise GenotypeError(f"expected kind 'genotype', got {d.get('kind')!r}")
        if not isinstance(d["nodes"], list):
            raise GenotypeError("a genotype's 'nodes' must be a list")
        nodes = []
        for i, nd in enumerate(d["nodes"], start=1):
            try:
                nodes.append(Node.from_dict(nd))
            except GenotypeError as exc:
                raise GenotypeError(f"node {i}: {exc}") from None
        return cls(tuple(nodes))

    def to_json(self) -> str:
        """Canonical JSON: sorted keys, no whitespace; equal genotypes give equal text."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Genotype:
        try:
            d = json.loads(text)
        except (ValueError, RecursionError) as exc:  # too deep, or an over-long integer
            raise GenotypeError(f"genotype JSON cannot be parsed: {exc}") from None
        return cls.from_dict(d)

    @property
    def key(self) -> str:
        """Stable hash: 16 hex characters of sha256 of the builder version and canonical JSON.

        The builder version is part of it so that a result trained with an older
        builder (another network for the same genotype) is never found under this key.
        """
        blob = f"builder{BUILDER_VERSION}:{self.to_json()}"
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]

