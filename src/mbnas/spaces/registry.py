"""The registry of named search spaces: what each one searches and with which options.

One list (:data:`SPACES_REGISTRY`), read by the CLI's choices, the configs and the
report. A space is a :class:`SpaceDefinition` registered by name (the built-in ones at
the end of this file); :func:`mbnas.spaces.mbnas.definitions.get_space` builds it. A duplicate name
is an error; an unknown name lists the valid ones. This module sits outside
:mod:`mbnas.spaces.mbnas` so that the CLI can read the names without importing torch. A kernel
or skip option left ``None`` means "every option of the genotype encoding"; the block
families are always named (:data:`PAPER_BLOCKS` by default), so registering a new
family never changes an existing space.
"""

from __future__ import annotations

from dataclasses import dataclass

from mbnas.registry import Registry

#: The block families of the paper, in the paper's order: the ``b`` options of its spaces.
PAPER_BLOCKS: tuple[str, ...] = ("vgg", "residual", "dense", "inception")
PAPER_MAX_DEPTH = 3
PAPER_KERNELS: tuple[int, ...] = (3, 5, 7)
PAPER_SKIPS: tuple[int, ...] = (0, 1, 2)
PAPER_SIZE = 1.14e18
#: The blocks a space that fixes its blocks (Macro-NAS, Bilevel-NAS) may be given
#: (``--block``): mbnas's VGG block (k x k twice) or the authors' VGGBlock2 (k x k, 3 x 3).
FIXED_BLOCKS: tuple[str, ...] = ("vgg", "vgg2")
PAPER_SIZE_NOTE = (
    "the paper does not publish its counting rules; counting every digit combination "
    "of the authors' alphabet (invalid ones included) gives 3.74e18, and no reading of "
    "the rules we tried gives 1.14e18 exactly"
)


#: The architecture language of the paper's genotypes (``SpaceDefinition.language``).
MBNAS_LANGUAGE = "mb-nas"


@dataclass(frozen=True)
class SpaceDefinition:
    """A named search space: what is searched, its options and its fixed base.

    ``about`` is the one-line summary of ``mbnas space``; ``label`` the name reports
    give its best network (default: the space's name); ``description`` the reporting
    card's sentence (default: the name); ``paper_size`` the size the paper states.
    ``blocks`` are the block families it searches (the ``b`` options, registered names),
    in option order. ``spatial_dims`` says whether its networks are 2D (images, every
    built-in space) or 3D (volumes); every block it names must support it.
    ``language`` is the architecture language whose codec reads and builds its
    architectures (:mod:`mbnas.spaces.languages`; the paper's genotypes: ``"mb-nas"``);
    the fields ``searched`` to ``first_skip_node`` are the MB-NAS language's options, and
    another language reads what it needs from its definition.
    """

    name: str
    searched: str
    base: str = "unet"
    max_depth: int | None = PAPER_MAX_DEPTH
    blocks: tuple[str, ...] = PAPER_BLOCKS
    kernels: tuple[int, ...] | None = PAPER_KERNELS
    skips: tuple[int, ...] | None = PAPER_SKIPS
    last_same: bool = True
    first_skip_node: int = 3
    about: str = ""
    label: str = ""
    description: str = ""
    paper_size: float | None = None
    spatial_dims: int = 2
    language: str = MBNAS_LANGUAGE

    @property
    def display_name(self) -> str:
        """The name reports give its best network (the paper's Table 1 names), e.g. "MB-NAS"."""
        return self.label or self.name

    @property
    def card_text(self) -> str:
        """What the reporting card says the space searches."""
        return self.description or self.name


#: Every named search space.
SPACES_REGISTRY: Registry[SpaceDefinition] = Registry(
    "search space", "named search spaces: what is searched, with which options")


def register_space(definition: SpaceDefinition) -> SpaceDefinition:
    """Register a named space.

    Raises:
        ValueError: If the name is taken (a duplicate is an error, not a warning).
    """
    return SPACES_REGISTRY.register(definition.name, definition)


#: The registered space names, in registration order.
space_names = SPACES_REGISTRY.names

#: The definition of a space by name (``ConfigError`` listing the valid names).
space_definition = SPACES_REGISTRY.get


#: The start that samples a random network of the space (``--start random``).
RANDOM_START = "random"
#: The space `mbnas search` searches unless told otherwise: the paper's MB-NAS space.
DEFAULT_SPACE = "mbnas"
#: The topology-only space; Bilevel-NAS (``--strategy bilevel``) searches it first.
MACRO_SPACE = "macro"

for _definition in (
    SpaceDefinition(DEFAULT_SPACE, "abcd", label="MB-NAS", paper_size=PAPER_SIZE,
                    blocks=PAPER_BLOCKS,
                    about="the paper's MB-NAS space, the authors' options",
                    description="MB-NAS: topology (cell types, skips) and cells (block "
                                "family, kernel) of every node"),
    SpaceDefinition("mbnas-wide", "abcd", max_depth=None, blocks=PAPER_BLOCKS,
                    kernels=None, skips=None,
                    last_same=False, first_skip_node=1,
                    about="extended: depth 4, kernels 1-7, skip 'both', any last cell"),
    SpaceDefinition(MACRO_SPACE, "ad", label="Macro-NAS",
                    about="Macro-NAS: topology only, VGG 3x3 blocks",
                    description="Macro-NAS: topology only (cell types, skips); VGG 3x3 "
                                "blocks"),
    SpaceDefinition("micro", "bc", label="Micro-NAS", blocks=PAPER_BLOCKS,
                    about="Micro-NAS: blocks and kernels on the U-Net",
                    description="Micro-NAS: U-Net topology; block family and kernel of "
                                "every node"),
):
    register_space(_definition)
SPACES: tuple[str, ...] = space_names()
