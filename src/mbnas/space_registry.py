"""The registry of named search spaces: what each one searches and with which options.

One list, read by the CLI's choices, the configs and the report. A space is a
:class:`SpaceDefinition` registered by name; :func:`mbnas.space.spaces.get_space` builds
it. A duplicate name is an error; an unknown name lists the valid ones. This module
sits outside :mod:`mbnas.space` so that the CLI can read the names without importing
torch; an option left ``None`` means "every option of the genotype encoding".
"""

from __future__ import annotations

from dataclasses import dataclass

from mbnas.errors import ConfigError

PAPER_MAX_DEPTH = 3
PAPER_KERNELS: tuple[int, ...] = (3, 5, 7)
PAPER_SKIPS: tuple[int, ...] = (0, 1, 2)
PAPER_SIZE = 1.14e18
#: How a built network's weights are initialised (``mbnas.space.init``; the protocol's
#: ``init``): PyTorch's default, or He-normal as the authors' VGG-only class does.
INITS: tuple[str, ...] = ("default", "he")
#: The blocks a space that fixes its blocks (Macro-NAS, Bilevel-NAS) may be given
#: (``--block``): mbnas's VGG block (k x k twice) or the authors' VGGBlock2 (k x k, 3 x 3).
FIXED_BLOCKS: tuple[str, ...] = ("vgg", "vgg2")
PAPER_SIZE_NOTE = (
    "the paper does not publish its counting rules; counting every digit combination "
    "of the authors' alphabet (invalid ones included) gives 3.74e18, and no reading of "
    "the rules we tried gives 1.14e18 exactly"
)


@dataclass(frozen=True)
class SpaceDefinition:
    """A named search space: what is searched, its options and its fixed base.

    ``about`` is the one-line summary of ``mbnas space``; ``label`` the name reports
    give its best network (default: the space's name); ``description`` the reporting
    card's sentence (default: the name); ``paper_size`` the size the paper states.
    """

    name: str
    searched: str
    base: str = "unet"
    max_depth: int | None = PAPER_MAX_DEPTH
    kernels: tuple[int, ...] | None = PAPER_KERNELS
    skips: tuple[int, ...] | None = PAPER_SKIPS
    last_same: bool = True
    first_skip_node: int = 3
    about: str = ""
    label: str = ""
    description: str = ""
    paper_size: float | None = None

    @property
    def display_name(self) -> str:
        """The name reports give its best network (the paper's Table 1 names), e.g. "MB-NAS"."""
        return self.label or self.name

    @property
    def card_text(self) -> str:
        """What the reporting card says the space searches."""
        return self.description or self.name


_SPACES: dict[str, SpaceDefinition] = {}


def register_space(definition: SpaceDefinition) -> None:
    """Register a named space.

    Raises:
        ValueError: If the name is taken (a duplicate is an error, not a warning).
    """
    if definition.name in _SPACES:
        raise ValueError(f"space {definition.name!r} is already registered; choose another name")
    _SPACES[definition.name] = definition


def space_names() -> tuple[str, ...]:
    """The registered space names, in registration order."""
    return tuple(_SPACES)


def space_definition(name: str) -> SpaceDefinition:
    """The definition of space ``name``.

    Raises:
        ConfigError: If the name is unknown; the message lists the valid names.
    """
    try:
        return _SPACES[name]
    except (KeyError, TypeError):
        raise ConfigError(
            f"unknown search space {name!r}; spaces: {', '.join(_SPACES)}"
        ) from None


#: The space `mbnas search` searches unless told otherwise: the paper's MB-NAS space.
DEFAULT_SPACE = "mbnas"
#: The topology-only space; Bilevel-NAS (``--strategy bilevel``) searches it first.
MACRO_SPACE = "macro"

for _definition in (
    SpaceDefinition(DEFAULT_SPACE, "abcd", label="MB-NAS", paper_size=PAPER_SIZE,
                    about="the paper's MB-NAS space, the authors' options",
                    description="MB-NAS: topology (cell types, skips) and cells (block "
                                "family, kernel) of every node"),
    SpaceDefinition("mbnas-wide", "abcd", max_depth=None, kernels=None, skips=None,
                    last_same=False, first_skip_node=1,
                    about="extended: depth 4, kernels 1-7, skip 'both', any last cell"),
    SpaceDefinition(MACRO_SPACE, "ad", label="Macro-NAS",
                    about="Macro-NAS: topology only, VGG 3x3 blocks",
                    description="Macro-NAS: topology only (cell types, skips); VGG 3x3 "
                                "blocks"),
    SpaceDefinition("micro", "bc", label="Micro-NAS",
                    about="Micro-NAS: blocks and kernels on the U-Net",
                    description="Micro-NAS: U-Net topology; block family and kernel of "
                                "every node"),
):
    register_space(_definition)
SPACES: tuple[str, ...] = space_names()
