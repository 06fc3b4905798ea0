"""The authors' 40-digit genotype strings: conversion, and their exact layer shapes.

The reference figures were measured by running the authors' network class
(``NAS_WNet_blocks_convs`` of github.com/martijnbosma/P3GOMEA-MIS, ``py_src/unet/``,
built as their ``unet_evaluate.initialize_network`` does) outside this project:
parameters, and MACs with ``torch.utils.flop_counter`` (the counter of
:func:`count_macs`) at 32x32, batch 1. The first two strings are the genotype strings
in the authors' final code (``unet_setup_training.py``), the third the one their first
commit also named there; the last is our U-Net preset.
"""

from __future__ import annotations

import json

import pytest

from mbnas.cli import main
from mbnas.costs.measure import count_macs, count_parameters
from mbnas.errors import GenotypeError
from mbnas.spaces.mbnas import (
    Genotype,
    Node,
    build_model,
    from_authors_string,
    preset,
    to_authors_string,
)
from mbnas.spaces.mbnas.presets import start_genotype

RELEASED = "0320100012202000320031203001232111210121"
COMMENTED = "0210132021102000100112102020100111220311"
FIRST_COMMIT = "0000100022203000320031213002232111210000"  # unet_setup_training.py, commit 3731a48
UNET = "0000100020003000300030003000200110010001"

# string, in_channels, classes, base channels -> (parameters, MACs @ 32x32)
AUTHORS_FIGURES = [
    (RELEASED, 2, 3, 32, 13_194_723, 1_365_934_080),
    (RELEASED, 1, 2, 8, 826_986, 85_417_984),
    (COMMENTED, 2, 3, 32, 5_019_299, 1_249_542_144),
    (COMMENTED, 1, 2, 8, 315_290, 78_143_488),
    (FIRST_COMMIT, 2, 3, 32, 22_445_475, 986_873_856),
    (FIRST_COMMIT, 1, 2, 8, 1_405_338, 61_726_720),
    (UNET, 2, 3, 32, 5_474_787, 231_899_136),
    (UNET, 1, 2, 8, 343_914, 14_540_800),
]


@pytest.mark.parametrize(("text", "cin", "classes", "base", "params", "macs"), AUTHORS_FIGURES)
def test_authors_genotypes_build_with_the_authors_shapes(text, cin, classes, base, params,
                                                         macs):
    model = build_model(from_authors_string(text), cin, classes, base_channels=base)
    assert count_parameters(model) == params
    assert count_macs(model, (1, cin, 32, 32)) == macs


@pytest.mark.parametrize("text", [RELEASED, COMMENTED, FIRST_COMMIT, UNET])
def test_string_round_trip(text):
    genotype = from_authors_string(text)
    assert to_authors_string(genotype) == text
    assert Genotype.from_json(genotype.to_json()) == genotype


def test_released_genotype_reads_as_the_authors_class_wires_it():
    g = from_authors_string(RELEASED)
    # Depth digits 0 1 1 2 3 3 3 2 1 0 are the levels of nodes 0..9 (each node's
    # input); node 10 is the authors' final non-scaling block.
    assert g.levels() == (0, 1, 1, 2, 3, 3, 3, 2, 1, 0, 0)
    assert [n.block for n in g.nodes[:3]] == ["inception", "vgg", "dense"]
    assert [n.kernel for n in g.nodes[:3]] == [7, 3, 7]
    assert [g.skip_sources(i) for i in (7, 8, 9, 10)] == [(4,), (3,), (2,), (0,)]
    assert to_authors_string(preset("unet")) == UNET


@pytest.mark.parametrize(("text", "message"), [
    ("123", "40 digits"),
    ("1" + RELEASED[1:], "node 1's depth digit is the stem's level and must be 0"),
    (RELEASED[:4] + "2" + RELEASED[5:], "node 1: depth goes from 0 to 2"),
    (RELEASED[:5] + "4" + RELEASED[6:], "node 2: block digit 4 is not one of the paper's"),
    (RELEASED[:39] + "3", "node 10: skip 3 needs 2 earlier node"),
])
def test_bad_strings_are_refused_with_the_node(text, message):
    with pytest.raises(GenotypeError, match=message):
        from_authors_string(text)


def test_genotypes_without_a_string_are_refused():
    last_up = Genotype(tuple(Node(c, "vgg", 3, 0) for c in ["same"] * 8 + ["down", "up"]))
    with pytest.raises(GenotypeError, match="node 10 is a 'up' cell"):
        to_authors_string(last_up)


def test_start_accepts_a_string_or_a_preset():
    assert start_genotype(RELEASED) == from_authors_string(RELEASED)
    assert start_genotype("unet") == preset("unet")
    with pytest.raises(GenotypeError, match="or an authors' 40-digit genotype string"):
        start_genotype("vnet")


def test_cli_converts_both_ways(tmp_path, capsys):
    out = tmp_path / "g.json"
    assert main(["space", "convert", RELEASED, "--out", str(out)]) == 0
    assert Genotype.from_dict(json.loads(out.read_text())) == from_authors_string(RELEASED)
    capsys.readouterr()
    assert main(["space", "convert", str(out)]) == 0
    assert capsys.readouterr().out.strip() == RELEASED
    assert main(["space", "cost", str(out), "--in-channels", "2", "--classes", "3",
                 "--size", "32", "--no-memory"]) == 0
    assert "13.19 M" in capsys.readouterr().out
    assert main(["space", "convert", RELEASED[:-1] + "9"]) == 2
    assert "node 10: skip digit 9 is not 0-3" in capsys.readouterr().err
