"""Cost figures of a network: parameters, multiply-accumulates and activation memory.

MACs depend on the input size, so every MAC figure is printed with it
("644 MMAC @ 32x32"). We report at the training size (128x128) by default. The
paper's MMAC column was computed at a **32x32** input: its ResU-Net's 166 MMAC and
32.5 M parameters are exactly smp ``Unet("resnet50")`` at 32x32, and its U-Net's 302
MMAC and 18.4 M parameters are ``Unet("vgg13")`` at 32x32 (we count 300 and 165 with
PyTorch's FLOP counter, which counts convolutions and matrix products only). Use
``--size 32`` to compare with the paper's table.

MACs are counted with ``torch.utils.flop_counter.FlopCounterMode`` (MACs = FLOPs / 2;
convolutions, transposed convolutions and matrix products; pooling, BatchNorm and
activations are not counted).

Activation memory is what a training step keeps for the backward pass: the bytes of
all distinct tensors that autograd saves during one forward pass in training mode
(found with ``torch.autograd.graph.saved_tensors_hooks``; parameters excluded, views
of one storage counted once). This is the part of training memory that grows with
the batch and the input size; it is measured on whatever device the model is on,
without needing a GPU, and is deterministic.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from mbnas.space.baselines import Baseline
from mbnas.space.build import build_model
from mbnas.space.genotype import Genotype


def count_parameters(model: nn.Module) -> int:
    """Number of parameters (trainable or not) of a model."""
    return sum(p.numel() for p in model.parameters())


def _device(model: nn.Module) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def count_macs(model: nn.Module, input_shape: Sequence[int]) -> int:
    """Multiply-accumulate operations of one forward pass in eval mode.

    Args:
        model: The network.
        input_shape: The full input shape (B, C, H, W).
    """
    was_training = model.training
    model.eval()
    counter = FlopCounterMode(display=False)
    try:
        with counter, torch.no_grad():
            model(torch.zeros(tuple(input_shape), device=_device(model)))
    finally:
        model.train(was_training)
    return counter.get_total_flops() // 2


def peak_activation_memory(model: nn.Module, input_shape: Sequence[int]) -> int:
    """Bytes of activations kept for the backward pass of one training forward pass.

    The model's buffers (BatchNorm running statistics) are restored afterwards, so
    measuring does not change the model.

    Args:
        model: The network.
        input_shape: The full input shape (B, C, H, W).
    """
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    saved: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        ptr = storage.data_ptr()
        if ptr not in params and ptr != 0:
            saved[ptr] = max(saved.get(ptr, 0), storage.nbytes())
        return t

    buffers = {name: b.detach().clone() for name, b in model.named_buffers()}
    was_training = model.training
    model.train()
    try:
        with torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            out = model(torch.zeros(tuple(input_shape), device=_device(model)))
            del out
    finally:
        model.train(was_training)
        with torch.no_grad():
            for name, b in model.named_buffers():
                b.copy_(buffers[name])
    return sum(saved.values())


def format_macs(macs: int, input_size: Sequence[int]) -> str:
    """MACs with the input size they hold for: ``"644 MMAC @ 32x32"``."""
    mmac = macs / 1e6
    number = f"{mmac:,.0f}" if mmac >= 10 else f"{mmac:.2f}"
    return f"{number} MMAC @ {'x'.join(str(s) for s in input_size)}"


def format_bytes(n: int) -> str:
    for unit, scale in (("GiB", 2 ** 30), ("MiB", 2 ** 20), ("KiB", 2 ** 10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


@dataclass(frozen=True)
class CostReport:
    """Cost of one network at one input size.

    Attributes:
        params: Number of parameters.
        macs: Multiply-accumulates of one forward pass at ``input_size`` (batch 1).
        input_size: (H, W) the MACs and memory were measured at.
        in_channels: Input channels.
        n_classes: Output classes.
        memory_bytes: Activation memory of a training step per sample (measured at
            batch 2, halved, since BatchNorm cannot train on one 1x1 sample), or None.
    """

    params: int
    macs: int
    input_size: tuple[int, int]
    in_channels: int
    n_classes: int
    memory_bytes: int | None = None

    def format(self) -> str:
        """Multi-line text; MACs and memory always carry the input size."""
        size = "x".join(map(str, self.input_size))
        lines = [
            f"parameters: {self.params / 1e6:.2f} M ({self.params:,})",
            f"MACs: {format_macs(self.macs, self.input_size)} "
            f"({self.in_channels} input channel(s), {self.n_classes} class(es), batch 1)",
        ]
        if self.memory_bytes is not None:
            lines.append(
                f"activation memory: {format_bytes(self.memory_bytes)} per sample @ {size} "
                "(kept for backward by a training forward pass; x batch size)"
            )
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.format()


def cost_report(
    architecture: Genotype | Baseline | nn.Module,
    input_size: int | Sequence[int] = 128,
    in_channels: int = 1,
    n_classes: int = 2,
    memory: bool = True,
) -> CostReport:
    """Measure parameters, MACs and (optionally) activation memory.

    Args:
        architecture: A genotype, a baseline, or a built model.
        input_size: H (square) or (H, W); default the training size 128.
        in_channels: Input channels (ignored for a built model's weights, but used
            for the input tensor).
        n_classes: Output classes (for building a genotype or a baseline).
        memory: Whether to measure activation memory (one training forward pass).
    """
    size = (input_size, input_size) if isinstance(input_size, int) else tuple(input_size)
    if isinstance(architecture, nn.Module):
        model = architecture
    else:
        model = build_model(architecture, in_channels, n_classes)
    shape = (1, in_channels, *size)
    return CostReport(
        params=count_parameters(model),
        macs=count_macs(model, shape),
        input_size=(int(size[0]), int(size[1])),
        in_channels=in_channels,
        n_classes=n_classes,
        memory_bytes=(
            peak_activation_memory(model, (2, *shape[1:])) // 2 if memory else None
        ),
    )
