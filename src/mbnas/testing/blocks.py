"""``check_block``: what every registered block family must do.

A block is built as the registry gives it, ``(in_channels, out_channels, kernel_size,
stride)``, for every kernel size of the paper's spaces: with stride 1 it keeps the
spatial size and passes finite gradients to its input and every parameter; with stride 2
it halves the size. The suite runs it on every registered family
(``tests/spaces/test_space_blocks.py``); torch is imported when a check runs.
"""

from __future__ import annotations

__all__ = ["check_block", "check_keeps_shape_and_passes_gradients", "check_stride_two"]

#: (in, out) channel pairs checked: a change of width and a kept one.
CHANNELS = ((5, 12), (12, 12))


def check_keeps_shape_and_passes_gradients(name: str, kernel: int, in_ch: int = 5,
                                           out_ch: int = 12) -> None:
    """Stride 1 keeps (H, W); finite output; every parameter and the input get a
    finite, non-zero gradient."""
    import torch

    from mbnas.nn.blocks import get_block

    torch.manual_seed(0)
    block = get_block(name)(in_ch, out_ch, kernel)
    x = torch.randn(2, in_ch, 12, 10, requires_grad=True)
    y = block(x)
    assert y.shape == (2, out_ch, 12, 10), f"{name} k{kernel}: output {tuple(y.shape)}"
    assert torch.isfinite(y).all()
    y.square().mean().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    for pname, p in block.named_parameters():
        assert p.grad is not None, f"{name}: parameter {pname} gets no gradient"
        assert torch.isfinite(p.grad).all()


def check_stride_two(name: str, kernel: int) -> None:
    """Stride 2 (a downscaling cell) halves (H, W)."""
    import torch

    from mbnas.nn.blocks import get_block

    block = get_block(name)(6, 8, kernel, stride=2)
    shape = tuple(block(torch.randn(2, 6, 12, 10)).shape)
    assert shape == (2, 8, 6, 5), f"{name} k{kernel} stride 2: output {shape}"


def check_block(name: str) -> None:
    """Every check on the registered family ``name``, for every kernel size."""
    from mbnas.spaces.mbnas import KERNELS

    for kernel in KERNELS:
        for in_ch, out_ch in CHANNELS:
            check_keeps_shape_and_passes_gradients(name, kernel, in_ch, out_ch)
        check_stride_two(name, kernel)
