"""Named genotypes of the MB-NAS space.

``"unet"``: the U-Net topology expressed in the space, as the paper says it is
included: nodes [same, down, down, down, down, up, up, up, up, same], all VGG blocks
with 3x3 kernels; skips d=1 on the four up nodes and none elsewhere. With the skip
rule (nearest earlier node at the same level, the predecessor excluded), d=1 on
node 6 (level 3) picks node 4, node 7 (level 2) node 3, node 8 (level 1) node 2, and
node 9 (level 0) node 1 (nearer than the stem): the encoder-decoder skips of U-Net.
Its deepest level is 4 (128 px -> 8 px).
"""

from __future__ import annotations

from mbnas.errors import GenotypeError
from mbnas.space.genotype import Genotype, Node

_UNET_CELLS = ("same", "down", "down", "down", "down", "up", "up", "up", "up", "same")

PRESETS: dict[str, Genotype] = {
    "unet": Genotype(tuple(
        Node(cell, "vgg", 3, 1 if i in (6, 7, 8, 9) else 0)
        for i, cell in enumerate(_UNET_CELLS, start=1)
    )),
}


def preset(name: str) -> Genotype:
    """Return the preset genotype ``name``.

    Raises:
        GenotypeError: If there is no such preset; the message lists the presets.
    """
    try:
        return PRESETS[name]
    except KeyError:
        raise GenotypeError(
            f"unknown preset {name!r}; presets: {', '.join(PRESETS)}"
        ) from None
