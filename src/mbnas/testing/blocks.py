"""``check_block``: what every registered block family must do.

A block is built as the registry gives it, ``(in_channels, out_channels, kernel_size,
stride)`` (and ``spatial_dims=3`` for a volume), for every kernel size of the paper's
spaces and every dimension its registration supports: with stride 1 it keeps the spatial
size and passes finite gradients to its input and every parameter; with stride 2 it
halves the size. The suite runs it on every registered family
(``tests/spaces/test_space_blocks.py``); torch is imported when a check runs.
"""

from __future__ import annotations

__all__ = ["CHANNELS", "SHAPES", "check_block", "check_keeps_shape_and_passes_gradients",
           "check_stride_two"]

#: (in, out) channel pairs checked: a change of width and a kept one.
CHANNELS = ((5, 12), (12, 12))
#: The spatial shape each dimension's checks run on: an image, and a small volume
#: (three different sizes, so a block that mixes up axes fails).
SHAPES = {2: (12, 10), 3: (8, 6, 4)}


def _dims(spatial_dims: int) -> dict[str, int]:
    """The keyword a block gets: none in 2D (a 2D-only family need not take it)."""
    return {} if spatial_dims == 2 else {"spatial_dims": spatial_dims}


def check_keeps_shape_and_passes_gradients(name: str, kernel: int, in_ch: int = 5,
                                           out_ch: int = 12, spatial_dims: int = 2) -> None:
    """Stride 1 keeps the spatial size; finite output; every parameter and the input get
    a finite, non-zero gradient."""
    import torch

    from mbnas.nn.blocks import get_block

    torch.manual_seed(0)
    block = get_block(name)(in_ch, out_ch, kernel, **_dims(spatial_dims))
    x = torch.randn(2, in_ch, *SHAPES[spatial_dims], requires_grad=True)
    y = block(x)
    assert y.shape == (2, out_ch, *SHAPES[spatial_dims]), \
        f"{name} k{kernel} {spatial_dims}D: output {tuple(y.shape)}"
    assert torch.isfinite(y).all()
    y.square().mean().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    for pname, p in block.named_parameters():
        assert p.grad is not None, f"{name}: parameter {pname} gets no gradient"
        assert torch.isfinite(p.grad).all()


def check_stride_two(name: str, kernel: int, spatial_dims: int = 2) -> None:
    """Stride 2 (a downscaling cell) halves every spatial size."""
    import torch

    from mbnas.nn.blocks import get_block

    block = get_block(name)(6, 8, kernel, stride=2, **_dims(spatial_dims))
    half = tuple(s // 2 for s in SHAPES[spatial_dims])
    shape = tuple(block(torch.randn(2, 6, *SHAPES[spatial_dims])).shape)
    assert shape == (2, 8, *half), f"{name} k{kernel} {spatial_dims}D stride 2: {shape}"


def check_block(name: str) -> None:
    """Every check on the registered family ``name``, for every kernel size and every
    dimension its registration supports."""
    from mbnas.nn.blocks import block_dims
    from mbnas.nn.blocks.registry import registered_dims
    from mbnas.spaces.mbnas import KERNELS

    # a built-in's dims are declared in the registry too (checked without torch): equal
    assert block_dims(name) == registered_dims(name), \
        f"{name}: registry declares dims {block_dims(name)}, its file registers " \
        f"{registered_dims(name)}"
    for spatial_dims in block_dims(name):
        for kernel in KERNELS:
            for in_ch, out_ch in CHANNELS:
                check_keeps_shape_and_passes_gradients(name, kernel, in_ch, out_ch,
                                                       spatial_dims)
            check_stride_two(name, kernel, spatial_dims)
