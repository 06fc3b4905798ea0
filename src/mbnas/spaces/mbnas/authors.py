"""The authors' genotype string: 40 digits, 10 nodes x (depth, block, conv, skip).

MB-NAS's public code (``py_src/unet/unet_evaluate.py``, ``set_depth_convs_and_blocks``)
encodes a network as 40 digits, four per node: the node's **depth** digit, its
**block** (0 VGG, 1 Residual, 2 Dense, 3 Inception; 4, a MobileNet block, is outside
the paper's space), its **conv** size (0: 3x3, 1: 5x5, 2: 7x7, 3: 1x1) and its
**skip** (0 none, 1 nearest, 2 second-nearest, 3 both).

Reading the authors' network class (``NAS_WNet_blocks_convs.__init__``) shows what
the depth digit means: block ``d`` of their network (d = 1..10; block 0 is the fixed
stem) uses node d's block and conv size, but goes *from* the depth of node d *to* the
depth of node d+1, and the last block is non-scaling. So node d's depth digit is the
level of node d's *input* (where its skip is concatenated): in mbnas terms, the level
of node d-1, with the stem as node 0. Hence:

* digit depth of node 1 = the stem's level, always 0;
* node d's cell type = depth(d+1) - depth(d) (down, same, up), node 10 always same;
* node d's block, kernel and skip are the digits of node d.

A genotype whose node 10 is not "same", or whose blocks or kernels have no digit,
has no string; :func:`to_authors_string` says so.
"""

from __future__ import annotations

from mbnas.errors import GenotypeError
from mbnas.spaces.mbnas.genotype import N_NODES, Genotype, Node

#: The authors' digit of each block family and conv size (``set_depth_convs_and_blocks``).
BLOCK_DIGITS: tuple[str, ...] = ("vgg", "residual", "dense", "inception")
CONV_DIGITS: tuple[int, ...] = (3, 5, 7, 1)
_CELL = {1: "down", 0: "same", -1: "up"}
LENGTH = 4 * N_NODES


def looks_like_authors_string(text: str) -> bool:
    """Whether ``text`` is 40 decimal digits (and so no file name or preset)."""
    return len(text) == LENGTH and text.isdigit()


def from_authors_string(text: str) -> Genotype:
    """The genotype of an authors' 40-digit string.

    Raises:
        GenotypeError: If the string is malformed or encodes a network outside the
            space (a depth jump of more than one level, node 1 not at depth 0, a
            MobileNet block, a skip pointing at no node), naming the node.
    """
    text = text.strip()
    if not looks_like_authors_string(text):
        raise GenotypeError(
            f"an authors' genotype string is {LENGTH} digits (10 nodes x depth, block, "
            f"conv, skip); got {text!r} ({len(text)} characters)"
        )
    digits = [[int(ch) for ch in text[i:i + 4]] for i in range(0, LENGTH, 4)]
    depths = [d[0] for d in digits] + [digits[-1][0]]  # the last block is non-scaling
    if depths[0] != 0:
        raise GenotypeError(
            f"node 1's depth digit is the stem's level and must be 0, got {depths[0]}"
        )
    nodes = []
    for i, (_, block, conv, skip) in enumerate(digits, start=1):
        step = depths[i] - depths[i - 1]
        if step not in _CELL:
            raise GenotypeError(
                f"node {i}: depth goes from {depths[i - 1]} to {depths[i]}; "
                "a cell changes the depth by at most one level"
            )
        if block >= len(BLOCK_DIGITS):
            raise GenotypeError(
                f"node {i}: block digit {block} is not one of the paper's blocks "
                f"(0 vgg, 1 residual, 2 dense, 3 inception)"
            )
        if conv >= len(CONV_DIGITS):
            raise GenotypeError(f"node {i}: conv digit {conv} is not 0-3 (3x3, 5x5, 7x7, 1x1)")
        if skip > 3:
            raise GenotypeError(f"node {i}: skip digit {skip} is not 0-3")
        nodes.append(Node(_CELL[step], BLOCK_DIGITS[block], CONV_DIGITS[conv], skip))
    try:
        return Genotype(tuple(nodes))
    except GenotypeError as exc:
        raise GenotypeError(f"authors' string {text}: {exc}") from None


def to_authors_string(genotype: Genotype) -> str:
    """The authors' 40-digit string of a genotype (inverse of :func:`from_authors_string`).

    Raises:
        GenotypeError: If the genotype has no string: not 10 nodes, node 10 not a
            non-scaling cell, or a block or kernel the authors' code has no digit for.
    """
    if len(genotype.nodes) != N_NODES:
        raise GenotypeError(
            f"the authors' string encodes {N_NODES} nodes; this genotype has "
            f"{len(genotype.nodes)}"
        )
    if genotype.nodes[-1].channels != "same":
        raise GenotypeError(
            f"node {N_NODES} is a {genotype.nodes[-1].channels!r} cell; in the authors' "
            "network the last block is always non-scaling, so there is no string for it"
        )
    levels = genotype.levels()
    out = []
    for i, node in enumerate(genotype.nodes, start=1):
        if node.block not in BLOCK_DIGITS:
            raise GenotypeError(f"node {i}: block {node.block!r} has no authors' digit")
        if node.kernel not in CONV_DIGITS:
            raise GenotypeError(f"node {i}: kernel {node.kernel} has no authors' digit")
        out.append(f"{levels[i - 1]}{BLOCK_DIGITS.index(node.block)}"
                   f"{CONV_DIGITS.index(node.kernel)}{node.skip}")
    return "".join(out)
