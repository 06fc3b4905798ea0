"""The MB-NAS language's codec: genotypes read, written, described, built and drawn.

Registered as the ``mb-nas`` architecture language (:mod:`mbnas.spaces.languages`), so
reports, export and prediction handle a genotype without reading its nodes themselves.
A genotype dict is ``{"kind": "genotype", "nodes": [{"channels", "block", "kernel",
"skip"}, ...]}``; :func:`describe` gives each node's four variables as text, and
:func:`genotype_text` the one-line form the front table prints
(``s vgg3 / d res5 / u den3<2``: s/d/u same/down/up, ``<2`` a skip from node 2).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mbnas.errors import GenotypeError
from mbnas.spaces.languages import Codec, register_language
from mbnas.spaces.registry import MBNAS_LANGUAGE

#: The variables of a node, in the genotype's field order (the paper's a, b, c, d).
VARIABLES = ("channels", "block", "kernel", "skip")


def _nodes(genotype: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    nodes = genotype.get("nodes")
    if not isinstance(nodes, (list, tuple)) or not all(isinstance(n, Mapping) for n in nodes):
        raise GenotypeError("a genotype needs a list of nodes")
    return list(nodes)


def describe(genotype: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """``{"node 1": {"channels": "down", "block": "vgg", "kernel": "3", "skip": "0"}, ...}``.

    The variables a node holds are listed as stored (a node missing one lacks it).
    """
    return {f"node {i}": {v: str(n[v]) for v in VARIABLES if v in n}
            for i, n in enumerate(_nodes(genotype), start=1)}


def genotype_text(genotype: Mapping[str, Any]) -> str:
    """A compact one-line genotype: per node channels initial, block, kernel, skip source."""
    return " / ".join(f"{n['channels'][0]} {n['block'][:3]}{n['kernel']}"
                      + (f"<{n['skip']}" if n.get("skip") else "") for n in _nodes(genotype))


def _decode(d: Mapping[str, Any]) -> Any:
    from mbnas.spaces.mbnas.genotype import Genotype

    return Genotype.from_dict(dict(d))


def _build(genotype: Any, in_channels: int, n_classes: int, base_channels: int = 32,
           spatial_dims: int = 2) -> Any:
    from mbnas.spaces.mbnas.build import build_network

    return build_network(genotype, in_channels, n_classes, base_channels, spatial_dims)


def _space(definition: Any, max_depth: int | None = None, block: str | None = None) -> Any:
    from mbnas.spaces.mbnas.definitions import get_space

    return get_space(definition.name, max_depth, block)


def _draw(genotype: Any, prefix: str | Path, title: str | None = None) -> tuple[Path, Path]:
    from mbnas.spaces.mbnas.draw import draw_genotype

    return draw_genotype(genotype, prefix, title=title)


CODEC = register_language(Codec(
    name=MBNAS_LANGUAGE, kind="genotype", decode=_decode, encode=lambda g: g.to_dict(),
    describe=describe, text=genotype_text, build=_build, space=_space,
    multiple=lambda g: 2 ** g.depth(), draw=_draw))
