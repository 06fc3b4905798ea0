"""The paper's MMAC convention (thop 0.0.31) against thop itself and the authors' figures.

``AUTHORS_THOP`` was measured by running thop 0.0.31 (``profile``, as the authors'
``unet_evaluate.py`` does) on the authors' own class ``NAS_WNet_blocks_convs``
(github.com/martijnbosma/P3GOMEA-MIS, ``py_src/unet/``), built for each string outside
this project, at 32x32 with 2 input channels and 3 classes (Prostate).
"""

from __future__ import annotations

import collections
import collections.abc

import pytest

from mbnas.cli import main
from mbnas.costs.measure import count_macs, count_macs_paper
from mbnas.spaces.mbnas import BASELINES, Baseline, build_model, from_authors_string, preset

RELEASED = "0320100012202000320031203001232111210121"
COMMENTED = "0210132021102000100112102020100111220311"
FIRST_COMMIT = "0000100022203000320031213002232111210000"
# string -> MACs of the authors' class by thop 0.0.31 at 32x32, 2 channels, 3 classes
AUTHORS_THOP = {RELEASED: 1444.16e6, COMMENTED: 1290.47e6, FIRST_COMMIT: 1063.91e6}


@pytest.fixture(scope="module")
def thop_profile():
    # thop 0.0.31 imports collections.Iterable, which Python 3.10 moved to collections.abc.
    collections.Iterable = collections.abc.Iterable  # type: ignore[attr-defined]
    return pytest.importorskip("thop.profile").profile


NETWORKS = [
    *(pytest.param(from_authors_string(s), id=s) for s in AUTHORS_THOP),
    pytest.param(preset("unet"), id="unet-preset"),
    *(pytest.param(Baseline(name), id=f"baseline-{name}") for name in BASELINES),
]


@pytest.mark.parametrize("architecture", NETWORKS)
def test_paper_convention_equals_thop_0_0_31(thop_profile, architecture) -> None:
    import torch

    model = build_model(architecture, 2, 3)
    ops, _ = thop_profile(model, (torch.zeros(1, 2, 32, 32),), verbose=False)
    assert count_macs_paper(model, (1, 2, 32, 32)) == int(ops)


@pytest.mark.parametrize("text", list(AUTHORS_THOP))
def test_paper_convention_matches_the_authors_counts(text: str) -> None:
    model = build_model(from_authors_string(text), 2, 3)
    paper = count_macs_paper(model, (1, 2, 32, 32))
    assert paper == pytest.approx(AUTHORS_THOP[text], rel=0.005)
    # thop counts each 2x2 stride-2 transposed convolution 4x: above the true count.
    assert paper > count_macs(model, (1, 2, 32, 32))


def test_space_cost_prints_both_counts_labelled(capsys) -> None:
    assert main(["space", "cost", RELEASED, "--size", "32", "--no-memory",
                 "--in-channels", "2", "--classes", "3"]) == 0
    out = capsys.readouterr().out
    assert "true count: 1365.93 MMAC @ 32x32" in out
    assert "paper's convention: 1444.23 MMAC @ 32x32 (thop 0.0.31" in out
