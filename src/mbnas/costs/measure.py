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
activations are not counted): the *true count*, each multiply-accumulate once.

**The paper's convention** (:func:`count_macs_paper`) is another count: the paper's
Table 1 MMAC come from thop 0.0.31 (``profile`` in the authors' ``unet_evaluate.py``, at
32x32, their ``base_num_features``). thop charges every output element of a convolution
``C_in / groups x k x k (+1 with a bias)``, also for a transposed convolution, whose
output has 4x the pixels of its input for the 2x2 stride-2 upsampling: each of those is
counted 4x too high. It adds 2 per BatchNorm input element, 1 per LeakyReLU input
element (ReLU 0), 1 per average-pooling output element and ``in_features`` per Linear
output; everything else (max pooling, concatenation, residual sums) is free. The
released MB-NAS string gives 1365.6 MMAC true and 1443.9 in the paper's convention at
32x32 (1 input channel, 2 classes); the U-Net preset 231.6 and 289.5. The count is
tested against thop itself (``tests/spaces/test_space_cost_paper.py``).

Activation memory is what a training step keeps for the backward pass: the bytes of
all distinct tensors that autograd saves during one forward pass in training mode
(found with ``torch.autograd.graph.saved_tensors_hooks``; parameters excluded, views
of one storage counted once). This is the part of training memory that grows with
the batch and the input size; it is measured on whatever device the model is on,
without needing a GPU, and is deterministic.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from mbnas.spaces.mbnas.baselines import Baseline
from mbnas.spaces.mbnas.build import build_model
from mbnas.spaces.mbnas.genotype import Genotype


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
        input_shape: The full input shape (B, C, H, W), or (B, C, D, H, W) for a volume.
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


def count_macs_paper(model: nn.Module, input_shape: Sequence[int]) -> int:
    """MACs of one forward pass in eval mode as thop 0.0.31 counts them (the paper's).

    See the module docstring for the rules. Every call of a module counts, as thop's
    forward hooks do; modules are matched by kind (a subclass of ``nn.Conv2d`` counts
    as a convolution), so the count is that of the authors' class for the same network.

    Args:
        model: The network.
        input_shape: The full input shape (B, C, H, W), or (B, C, D, H, W) for a volume.
    """
    total = 0

    def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        nonlocal total
        total += _paper_ops(module, inputs[0], output)

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, _PAPER_COUNTED)]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(tuple(input_shape), device=_device(model)))
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return total


_PAPER_COUNTED = (nn.modules.conv._ConvNd, nn.modules.batchnorm._BatchNorm, nn.LeakyReLU,
                  nn.modules.pooling._AvgPoolNd, nn.modules.pooling._AdaptiveAvgPoolNd,
                  nn.Linear)


def _paper_ops(m: nn.Module, x: torch.Tensor, y: torch.Tensor) -> int:
    """thop 0.0.31's operations of one call of a counted module (``vision/basic_hooks.py``)."""
    if isinstance(m, nn.modules.conv._ConvNd):
        kernel = math.prod(m.kernel_size)
        return y.numel() * (m.in_channels // m.groups * kernel + (m.bias is not None))
    if isinstance(m, nn.modules.batchnorm._BatchNorm):
        return 2 * x.numel()
    if isinstance(m, nn.LeakyReLU | nn.modules.pooling._AvgPoolNd):
        return (x if isinstance(m, nn.LeakyReLU) else y).numel()
    if isinstance(m, nn.modules.pooling._AdaptiveAvgPoolNd):
        dims = tuple(x.shape[2:])
        out = m.output_size if isinstance(m.output_size, tuple) else (m.output_size,) * len(dims)
        window = math.prod(s // o for s, o in zip(dims, out, strict=True))
        return (window + 1) * y.numel()
    return m.in_features * y.numel()  # nn.Linear


def peak_activation_memory(model: nn.Module, input_shape: Sequence[int]) -> int:
    """Bytes of activations kept for the backward pass of one training forward pass.

    The model's buffers (BatchNorm running statistics) are restored afterwards, so
    measuring does not change the model.

    Args:
        model: The network.
        input_shape: The full input shape (B, C, H, W), or (B, C, D, H, W) for a volume.
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
        input_size: (H, W), or (D, H, W) for a volume, the MACs and memory were measured at.
        in_channels: Input channels.
        n_classes: Output classes.
        memory_bytes: Activation memory of a training step per sample (measured at
            batch 2, halved, since BatchNorm cannot train on one 1x1 sample), or None.
        paper_macs: MACs at ``input_size`` in the paper's convention (thop 0.0.31,
            :func:`count_macs_paper`), or None.
    """

    params: int
    macs: int
    input_size: tuple[int, ...]
    in_channels: int
    n_classes: int
    memory_bytes: int | None = None
    paper_macs: int | None = None

    def format(self) -> str:
        """Multi-line text; MACs and memory always carry the input size."""
        size = "x".join(map(str, self.input_size))
        lines = [
            f"parameters: {self.params / 1e6:.2f} M ({self.params:,})",
            f"MACs: {format_macs(self.macs, self.input_size)} "
            f"({self.in_channels} input channel(s), {self.n_classes} class(es), batch 1)",
            f"  true count: {self.macs / 1e6:.2f} MMAC @ {size} (each multiply-accumulate "
            "once; torch.utils.flop_counter)",
        ]
        if self.paper_macs is not None:
            lines.append(
                f"  paper's convention: {self.paper_macs / 1e6:.2f} MMAC @ {size} (thop "
                "0.0.31 as in the paper's Table 1: transposed convolutions counted 4x, "
                "BatchNorm and LeakyReLU counted)")
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
    paper: bool = False,
    spatial_dims: int = 2,
) -> CostReport:
    """Measure parameters, MACs and (optionally) activation memory.

    Args:
        architecture: A genotype, a baseline, or a built model.
        input_size: H (square, or cube in 3D) or (H, W) / (D, H, W); default the
            training size 128.
        in_channels: Input channels (ignored for a built model's weights, but used
            for the input tensor).
        n_classes: Output classes (for building a genotype or a baseline).
        memory: Whether to measure activation memory (one training forward pass).
        paper: Whether to count the MACs in the paper's convention too.
        spatial_dims: 2 (images) or 3 (volumes: a 5D input of shape (B, C, D, H, W)).
    """
    size = (input_size,) * spatial_dims if isinstance(input_size, int) else tuple(input_size)
    if len(size) != spatial_dims:
        raise ValueError(f"input_size {input_size!r} must have {spatial_dims} sizes")
    if isinstance(architecture, nn.Module):
        model = architecture
    else:
        model = build_model(architecture, in_channels, n_classes, spatial_dims=spatial_dims)
    shape = (1, in_channels, *size)
    return CostReport(
        params=count_parameters(model),
        macs=count_macs(model, shape),
        input_size=tuple(int(s) for s in size),
        in_channels=in_channels,
        n_classes=n_classes,
        memory_bytes=(
            peak_activation_memory(model, (2, *shape[1:])) // 2 if memory else None
        ),
        paper_macs=count_macs_paper(model, shape) if paper else None,
    )
