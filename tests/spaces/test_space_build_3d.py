"""The 3D network of a genotype uses the planned stride of each level."""

from __future__ import annotations

import pytest
import torch

from mbnas.errors import ConfigError
from mbnas.spaces.mbnas import build_model, get_space, preset

STRIDES = ((2, 2, 1), (2, 2, 1), (2, 2, 2))  # the plan of 0.8 x 0.8 x 5 mm


def test_down_and_up_cells_use_the_planned_stride_of_their_level() -> None:
    genotype = preset("unet")
    net = build_model(genotype, 1, 2, 4, spatial_dims=3, strides=STRIDES)
    shapes = []
    for cell in net.cells:
        cell.register_forward_hook(lambda _m, _i, out: shapes.append(tuple(out.shape[2:])))
    x = torch.zeros(1, 1, 32, 32, 8)
    assert net(x).shape == (1, 2, 32, 32, 8)
    levels = genotype.levels()[1:]
    for level, shape in zip(levels, shapes, strict=True):
        factor = [1, 1, 1]
        for stride in STRIDES[:level]:
            factor = [f * s for f, s in zip(factor, stride)]
        assert shape == tuple(n // f for n, f in zip((32, 32, 8), factor))
    assert net.input_multiple == (8, 8, 2)


def test_an_input_the_planned_strides_do_not_divide_is_refused() -> None:
    net = build_model(preset("unet"), 1, 2, 4, spatial_dims=3, strides=STRIDES)
    with pytest.raises(ConfigError, match="8x8x2"):
        net(torch.zeros(1, 1, 32, 32, 7))


def test_3d_spaces_state_their_kernels_and_2d_spaces_are_unchanged() -> None:
    assert get_space("mbnas-3d").options["c"] == (3, 5)
    assert get_space("mbnas-3d").spatial_dims == 3
    assert get_space("mbnas").options["c"] == (3, 5, 7)
    assert get_space("mbnas").spatial_dims == 2
