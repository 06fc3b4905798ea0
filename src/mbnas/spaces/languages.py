"""Architecture languages: how each kind of architecture is read, written, described and built.

A search space speaks one *language*: the paper's MB-NAS genotypes (ten nodes of cell
type, block, kernel and skip; :mod:`mbnas.spaces.mbnas`) or another encoding, such as
a plain U-Net whose depth and widths are searched. Everything outside ``spaces/`` that
handles a stored architecture (the report's front and stability tables, the reporting
card, export and prediction) goes through the language's :class:`Codec`, never through
the fields of one encoding. An architecture is stored as a dict whose ``"kind"`` names
its codec (``"genotype"`` for MB-NAS; ``"baseline"`` for the hand-made networks, which
are no language: nothing is searched in them).

A language is one module that builds a :class:`Codec` and registers it
(:func:`register_language`), plus the spaces that name it
(``SpaceDefinition(language=...)``). See docs/extending.md, "An architecture language".

This module imports nothing heavy: the codec's functions import what they need.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from mbnas.errors import GenotypeError
from mbnas.registry import Registry


@dataclass(frozen=True)
class Variable:
    """One categorical variable of a space's encoding, e.g. ``b3`` (block of node 3): what
    every strategy iterates over, whatever the language."""

    name: str
    node: int
    kind: str
    options: tuple[Any, ...]


@dataclass(frozen=True)
class Codec:
    """The functions of one architecture language.

    Attributes:
        name: The language's name (``SpaceDefinition.language``), e.g. ``"mb-nas"``.
        kind: The ``"kind"`` of its architecture dicts, e.g. ``"genotype"``.
        decode: dict -> architecture (an object with ``key`` and ``to_dict()``); raises
            ``GenotypeError`` on a dict that is no valid architecture of the language.
        encode: architecture -> dict (``{"kind": kind, ...}``, JSON-ready).
        describe: dict -> ``{group: {variable: value text}}``, in order: what each searched
            variable holds, per node or stage (``{"node 1": {"block": "vgg", ...}}``).
            Reports compare architectures variable by variable through it.
        text: dict -> one short line naming the architecture (tables, the front).
        build: ``(architecture, in_channels, n_classes, base_channels, spatial_dims)`` ->
            ``nn.Module`` mapping (B, C, *spatial) to logits (B, K, *spatial).
        space: ``(definition, max_depth, block)`` -> the search space of a
            ``SpaceDefinition`` naming this language (``name``, ``size()``,
            ``sample(rng)``, ``contains(architecture)``, as the strategies use them).
        draw: ``(architecture, prefix, title)`` -> writes pictures of it
            (``PREFIX.png``, ``PREFIX.svg``) and returns their paths; None: no picture.
        multiple: architecture -> the number every spatial size of its input must be a
            multiple of (2 ** the number of halvings).
    """

    name: str
    kind: str
    decode: Callable[[Mapping[str, Any]], Any]
    encode: Callable[[Any], dict[str, Any]]
    describe: Callable[[Mapping[str, Any]], dict[str, dict[str, str]]]
    text: Callable[[Mapping[str, Any]], str]
    build: Callable[..., Any]
    space: Callable[..., Any]
    multiple: Callable[[Any], int]
    draw: Callable[..., Any] | None = None


#: Every architecture language, by name; the paper's (``mbnas``) is built in.
LANGUAGES: Registry[Codec] = Registry(
    "architecture language", "architecture languages: how a kind of architecture is read, "
    "written, described and built", builtins=("mbnas.spaces.mbnas.codec",))


def register_language(codec: Codec) -> Codec:
    """Register an architecture language under ``codec.name``.

    Raises:
        ValueError: If the name, or the kind of its dicts, is taken already.
    """
    taken = {c.kind for _, c in LANGUAGES.items()}
    if codec.kind in taken or codec.kind == "baseline":
        raise ValueError(f"architecture kind {codec.kind!r} is taken; choose another kind")
    return LANGUAGES.register(codec.name, codec, module=codec.decode.__module__)


#: The codec of a language by name (``ConfigError`` listing the valid names).
language = LANGUAGES.get


def codec_of(architecture: Mapping[str, Any] | Any) -> Codec | None:
    """The codec of a stored architecture dict (or an architecture object), None if none.

    A dict without ``"kind"`` but with ``"nodes"`` is an MB-NAS genotype written before
    kinds existed. A baseline (``"kind": "baseline"``) has no codec.
    """
    if not isinstance(architecture, Mapping):
        architecture = getattr(architecture, "to_dict", lambda: None)()
        if not isinstance(architecture, Mapping):
            return None
    kind = architecture.get("kind", "genotype" if "nodes" in architecture else None)
    return next((c for _, c in LANGUAGES.items() if c.kind == kind), None)


def describe(architecture: Mapping[str, Any] | Any) -> dict[str, dict[str, str]] | None:
    """What each variable of an architecture holds (see :attr:`Codec.describe`).

    None for anything that is no architecture of a language (a baseline, a broken dict).
    """
    codec = codec_of(architecture)
    if codec is None:
        return None
    d = architecture if isinstance(architecture, Mapping) else architecture.to_dict()
    try:
        return codec.describe(d)
    except (GenotypeError, KeyError, TypeError, ValueError, AttributeError):
        return None


def architecture_text(architecture: Mapping[str, Any]) -> str:
    """One short line naming an architecture: its codec's text, else its name or kind."""
    codec = codec_of(architecture)
    if codec is not None:
        try:
            return codec.text(architecture)
        except (GenotypeError, KeyError, TypeError, ValueError, AttributeError):
            pass
    return str(architecture.get("name", architecture.get("kind", "?")))
