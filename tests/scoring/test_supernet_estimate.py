"""`--estimate` of a supernet search: its trainings beside the plain search's."""

from __future__ import annotations

import torch

from mbnas.commands.common.estimate import Estimate, NetworkRate, supernet_lines
from mbnas.scoring.supernet import SuperNet
from mbnas.spaces.mbnas import get_space
from mbnas.training.protocol import get_protocol


def test_the_supernet_estimate_counts_supernet_epochs_and_the_retrained_runs() -> None:
    protocol = get_protocol("quick", epochs=10, folds=3, seeds=[0, 1], base_channels=4,
                            supernet_epochs=20)
    rates = (NetworkRate("a", 100.0, 400.0), NetworkRate("b", 50.0, 200.0))
    est = Estimate(protocol, 300, 150, rates, "cpu")
    space = get_space("macro")
    lines = supernet_lines(est, space, budget=150, retrain_top=5)
    # plain: 150 x 3 folds x 2 seeds x 10 epochs; supernet: 3 x 20 + 5 x 3 x 2 x 10
    assert "training-epoch equivalents: 360 against 9000 (1/25.0)" in lines[1]
    assert "3 supernet(s) x 20 epochs" in lines[0] and "the best 5 retrained" in lines[0]
    params = sum(p.numel() for p in SuperNet(space, 1, 2, 4).parameters())
    assert f"{params / 1e6:.1f} M parameters" in lines[2]
    with torch.device("meta"):  # the paper's width is counted the same way
        wide = SuperNet(space, 1, 2, 32)
    assert sum(p.numel() for p in wide.parameters()) > 40 * params
