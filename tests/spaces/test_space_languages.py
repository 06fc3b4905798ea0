"""Architecture languages: the MB-NAS codec, and a second language searched and reported.

The second language is the recipe of docs/extending.md ("An architecture language"): a
plain U-Net whose genotypes are depth and per-level widths, not MB-NAS nodes. It is
loaded as a plugin, searched by random search on a phantom through the CLI, and the
search-only report must show its best network in the language's own words.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from mbnas.cli import main
from mbnas.errors import GenotypeError
from mbnas.reporting.card import genotype_similarity
from mbnas.reporting.front import genotype_text
from mbnas.reporting.stability import option_frequencies, variable_distances
from mbnas.spaces.languages import LANGUAGES, codec_of, describe
from mbnas.spaces.mbnas import Baseline, architecture_from_dict, build_model, get_space, preset
from mbnas.spaces.registry import MBNAS_LANGUAGE, SPACES_REGISTRY

LANGUAGE = "An architecture language"


def test_the_mbnas_codec_describes_and_reads_genotypes() -> None:
    unet = preset("unet")
    codec = codec_of(unet.to_dict())
    assert codec is LANGUAGES.get(MBNAS_LANGUAGE) and codec.kind == "genotype"
    assert codec.decode(unet.to_dict()) == unet and codec.encode(unet) == unet.to_dict()
    described = describe(unet)
    assert list(described) == [f"node {i}" for i in range(1, 11)]
    assert described["node 1"] == {"channels": "down", "block": "vgg", "kernel": "3",
                                   "skip": "0"}
    assert genotype_text(unet.to_dict()).startswith("d vgg3 / d vgg3")
    assert codec.multiple(unet) == 8
    # A baseline is no language's: no description, its name as text.
    assert describe(Baseline("unet").to_dict()) is None
    assert genotype_text(Baseline("unet").to_dict()) == Baseline("unet").to_dict()["name"]


@pytest.fixture
def plain_unet(plugin):
    return plugin.recipe(LANGUAGE, LANGUAGES, SPACES_REGISTRY)


def test_a_second_language_is_read_built_and_compared_through_its_codec(plain_unet) -> None:
    space = get_space("plain-unet")
    assert space.size() == 9 + 27 + 81
    samples = [space.sample(np.random.default_rng(s)) for s in range(40)]
    assert {a.depth for a in samples} == {1, 2, 3} and all(space.contains(a) for a in samples)
    deep = next(a for a in samples if a.depth == 3)
    d = deep.to_dict()
    assert "nodes" not in d and architecture_from_dict(d) == deep
    for dims, shape in ((2, (16, 24)), (3, (8, 16, 8))):
        model = build_model(architecture_from_dict(d), 2, 3, base_channels=4, spatial_dims=dims)
        assert model(torch.randn(2, 2, *shape)).shape == (2, 3, *shape)
    # The reports compare and print it through its codec, as they do genotypes.
    assert genotype_text(d) == "plain U-Net " + "-".join(f"{w}x" for w in deep.widths)
    assert genotype_similarity(d, d) == 1.0
    other = next(a for a in samples if a.depth == 3 and a.widths[0] != deep.widths[0])
    assert 0 < genotype_similarity(d, other.to_dict()) < 1
    assert variable_distances(d, other.to_dict())["width"] > 0
    assert option_frequencies([d, d])["level 0"]["width"] == {f"{deep.widths[0]}x": 2}
    assert math.isnan(genotype_similarity(d, Baseline("unet").to_dict()))
    with pytest.raises(GenotypeError, match="plain U-Net has 2 to 4 levels"):
        architecture_from_dict({"kind": "plain-unet", "widths": [3]})


def test_a_second_language_is_searched_by_random_search_and_reported(
        plain_unet, tmp_path: Path, phantom_spleen: Path, phantom_cache: Path) -> None:
    config = tmp_path / "search.yaml"
    config.write_text(yaml.safe_dump({
        "data_dir": str(phantom_spleen), "space": "plain-unet", "strategy": "random",
        "budget": 3, "seed": 1, "cache_dir": str(phantom_cache),
        "protocol": {"epochs": 1, "folds": 2, "seeds": [0], "image_size": 32,
                     "base_channels": 4, "batch_size": 16, "precision": "fp32",
                     "samples_per_epoch": 0}}))
    run = tmp_path / "run"
    assert main(["search", "--config", str(config), "--out", str(run), "--threads", "1"]) == 0
    log = [json.loads(x) for x in (run / "search_log.jsonl").read_text().splitlines()]
    assert len(log) == 3 and all(e["genotype"]["kind"] == "plain-unet" for e in log)
    assert all(e["score"] is not None and 0 <= e["score"] <= 1 for e in log)
    best = json.loads((run / "best.json").read_text())
    best_arch = best.get("genotype", best.get("architecture"))
    assert main(["report", str(run), "--out", str(tmp_path / "report")]) == 0
    html = (tmp_path / "report" / "report.html").read_text()
    # The best network, in the language's words, under its picture (a table of its
    # variables: the codec draws nothing).
    caption = re.search(rf"search score {best['score']:.4f}[^<]*\): ([^<]*)\.\"", html)
    assert caption and caption.group(1) == genotype_text(best_arch)
    assert list((tmp_path / "report").rglob("architecture_*.png"))
    assert "Plain U-Net" in html
