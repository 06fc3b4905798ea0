"""Genotype encoding: structure, canonical JSON, stable key, validation messages."""

from __future__ import annotations

import dataclasses
import hashlib
import json

import numpy as np
import pytest

from mbnas.errors import GenotypeError
from mbnas.nn.blocks import block_names
from mbnas.spaces.mbnas import SPACES, Genotype, Node, get_space, preset


def _g(cells, skips=None, block="vgg", kernel=3):
    skips = skips or [0] * len(cells)
    return Genotype(tuple(Node(c, block, kernel, d) for c, d in zip(cells, skips, strict=True)))


def test_unet_preset_follows_the_skip_rule():
    unet = preset("unet")
    assert unet.levels() == (0, 1, 2, 3, 3, 3, 3, 2, 1, 0, 0)
    assert unet.channels() == (32, 64, 128, 256, 256, 256, 256, 128, 64, 32, 32)
    # Concatenated onto the predecessor's output: node 2 onto node 7 (feeding node 8),
    # node 1 onto node 8, the stem onto node 9: the encoder-decoder skips.
    assert [unet.skip_sources(i) for i in range(1, 11)] == [
        (), (), (), (), (), (), (), (2,), (1,), (0,)
    ]
    assert all(n.block == "vgg" and n.kernel == 3 for n in unet.nodes)
    unet.validate(max_depth=3)
    assert "skip <- node 2" in unet.describe()


def test_skip_values_pick_nearest_second_and_both():
    cells = ["same"] * 5  # all at level 0, with the stem
    g = _g(cells, [0] * 5)
    assert [g.skip_sources(5)] == [()]
    for skip, expected in ((1, (2,)), (2, (1,)), (3, (2, 1))):
        g = _g(cells, [0, 0, 0, 0, skip])
        # Onto node 4's output: node 4 itself and its input, node 3, excluded.
        assert g.skip_sources(5) == expected
    # The authors' range(max(0, i - 2), ...) lets node 2 take the stem (node 1's input).
    assert _g(["same", "same"], [0, 1]).skip_sources(2) == (0,)
    assert _g(["same", "same", "same"], [0, 0, 1]).skip_sources(3) == (0,)
    # Candidates are at the predecessor's level, not the node's: node 3 goes up to
    # level 0 but its skip is concatenated at node 2's level 1 (none there).
    with pytest.raises(GenotypeError, match="node 3: skip 1"):
        _g(["down", "same", "up"], [0, 0, 1])


def test_channels_capped():
    g = _g(["down"] * 5 + ["up"] * 5)
    assert g.channels(base=32, cap=512)[5] == 512
    assert g.channels(base=64, cap=512)[4:7] == (512, 512, 512)


@pytest.mark.parametrize("space_name", SPACES)
def test_json_round_trip(space_name):
    space = get_space(space_name)
    rng = np.random.default_rng(5)
    for _ in range(5):
        g = space.sample(rng)
        text = g.to_json()
        assert Genotype.from_json(text) == g
        assert Genotype.from_dict(json.loads(json.dumps(g.to_dict()))) == g
        assert text == json.dumps(json.loads(text), sort_keys=True, separators=(",", ":"))
        assert hash(Genotype.from_json(text)) == hash(g)


def test_key_is_sha256_of_canonical_json():
    g = _g(["same", "same"], [0, 1], block="dense", kernel=5)
    # The canonical format, written out by hand: sorted keys, no whitespace.
    canonical = (
        '{"kind":"genotype","nodes":['
        '{"block":"dense","channels":"same","kernel":5,"skip":0},'
        '{"block":"dense","channels":"same","kernel":5,"skip":1}]}'
    )
    assert g.to_json() == canonical
    # The builder version is hashed too: a result of the old builder (whose key was
    # the plain JSON hash) is never found under a new key.
    assert g.key == hashlib.sha256(f"builder2:{canonical}".encode()).hexdigest()[:16]
    assert g.key != hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]
    # Key order in the input dict does not matter.
    shuffled = {"nodes": [dict(reversed(list(n.items()))) for n in json.loads(canonical)["nodes"]]}
    assert Genotype.from_dict(shuffled).key == g.key


def test_numpy_integers_are_stored_as_ints():
    node = Node("same", "vgg", np.int64(5), np.int32(0))
    assert type(node.kernel) is int and type(node.skip) is int
    assert Genotype((node,)).key == _g(["same"], kernel=5).key


def test_keys_differ_between_genotypes():
    space = get_space("mbnas")
    rng = np.random.default_rng(0)
    genotypes = {space.sample(rng) for _ in range(50)}
    assert len({g.key for g in genotypes}) == len(genotypes)


def test_frozen():
    g = preset("unet")
    with pytest.raises(dataclasses.FrozenInstanceError):
        g.nodes = ()  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        g.nodes[0].kernel = 5  # type: ignore[misc]


UNET = ["same", "down", "down", "down", "down", "up", "up", "up", "up", "same"]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: _g(UNET, block="transformer"),
         "unknown block 'transformer'; valid: " + ", ".join(block_names())),
        (lambda: _g(UNET, kernel=4), "kernel 4 is not one of 1, 3, 5, 7"),
        (lambda: _g(UNET, kernel=True), "kernel must be an integer"),
        (lambda: _g(["sideways"] + UNET[1:]), "channels 'sideways' is not one of"),
        (lambda: _g(UNET, [4] * 10), "skip 4 is not one of 0, 1, 2, 3"),
        (lambda: _g(["up", "down"] + ["same"] * 8), "node 1 goes up to level -1"),
        (lambda: _g(["down"] + ["same"] * 9),
         r"the last node \(node 10\) ends at level 1 \(input/2\); it must end at full"),
        (lambda: _g(["same"] * 10, [1] + [0] * 9),
         "node 1: skip 1 needs 1 earlier node"),
        (lambda: _g(["same"] * 10, [0, 0, 2] + [0] * 7),
         r"node 3: skip 2 needs 2 earlier node\(s\) at node 2's level 0 other than nodes 2 "
         r"and 1, found 1 \(node 0\)"),
        (lambda: _g(["down"] * 5 + ["up"] * 5).validate(max_depth=4),
         r"node 5 goes to level 5 \(input/32\), deeper than max_depth 4"),
        (lambda: _g(UNET[:8]), r"node 8\) ends at level 1"),
        (lambda: _g(["same"] * 9).validate(),
         "the genotype has 9 nodes; the search space needs 10"),
        (lambda: Genotype(()), "at least one node"),
        (lambda: Genotype.from_json("{nodes"), "cannot be parsed"),
        (lambda: Genotype.from_dict({"nodes": "x"}), "'nodes' must be a list"),
        (lambda: Genotype.from_dict({"nodes": [{"channels": "same", "block": "vgg"}]}),
         r"node 1: .*missing \['kernel', 'skip'\]"),
        (lambda: Genotype.from_dict({"kind": "baseline", "nodes": []}), "expected kind"),
        (lambda: preset("unet").skip_sources(11), "node 11 does not exist"),
        (lambda: preset("vnet"), "unknown preset 'vnet'; presets: unet"),
    ],
)
def test_invalid_genotypes_rejected_with_message(make, message):
    with pytest.raises(GenotypeError, match=message):
        make()


def test_validate_accepts_shallower_limits_when_not_reached():
    g = _g(["down", "up"] + ["same"] * 8)
    g.validate(max_depth=1)
    with pytest.raises(GenotypeError, match="deeper than max_depth 0"):
        g.validate(max_depth=0)
