"""Named genotypes of the MB-NAS space.

``"unet"``: the U-Net topology expressed in the space, as the paper says it is
included, within the authors' depth cap of 3 (their alphabet, alphabets/NAS_MIS.txt,
allows depth digits 0..3): nodes [down, down, down, same, same, same, up, up, up,
same], all VGG blocks with 3x3 kernels. Encoder: the stem (level 0), nodes 1-3
(levels 1-3); the bottom: nodes 4-6 at level 3; decoder: nodes 7-9 up to levels 2, 1,
0, then node 10 at full resolution (the authors' last, non-scaling, block). Skips
(concatenated onto the predecessor's output before the cell resamples, see
:mod:`mbnas.spaces.mbnas.genotype`): d=1 on node 8 (node 2 onto node 7, level 2), node 9
(node 1 onto node 8, level 1) and node 10 (the stem onto node 9, level 0): the
encoder-decoder skips of U-Net. In the authors' 40-digit string this is
``0000100020003000300030003000200110010001``; 5.47 M parameters (1 channel, 2 classes).

``"unet-authors"``: the U-Net topology of the smoke test at the end of the authors'
``NAS_WNet_blocks_convs.py`` (depth digits 0,1,2,3,3,3,3,2,1,0, skip digits
0,0,0,0,0,1,2,1,1,1), VGG 3x3 throughout: the same cells, plus skips at the bottom
level onto nodes 6 and 7; 6.60 M parameters. ``unet`` stays the default U-Net of
``--start unet`` and Micro-NAS: a U-Net's skips join encoder and decoder at equal
resolution only, and the authors' string sits in a test that also mixes all five of
their blocks, MobileNet included, so it is a shape check, not their U-Net definition
(docs/fidelity.md).
"""

from __future__ import annotations

from mbnas.errors import GenotypeError
from mbnas.spaces.mbnas.authors import from_authors_string, looks_like_authors_string
from mbnas.spaces.mbnas.genotype import Genotype, Node

_UNET_CELLS = ("down", "down", "down", "same", "same", "same", "up", "up", "up", "same")

PRESETS: dict[str, Genotype] = {
    "unet": Genotype(tuple(
        Node(cell, "vgg", 3, 1 if i in (8, 9, 10) else 0)
        for i, cell in enumerate(_UNET_CELLS, start=1)
    )),
    "unet-authors": from_authors_string("0000100020003000300030013002200110010001"),
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




def start_genotype(spec: str) -> Genotype:
    """A search's start point: a preset name or an authors' 40-digit string.

    Raises:
        GenotypeError: If ``spec`` is neither (the message lists the presets).
    """
    if looks_like_authors_string(spec):
        return from_authors_string(spec)
    try:
        return preset(spec)
    except GenotypeError as exc:
        raise GenotypeError(f"{exc}, or an authors' 40-digit genotype string") from None
