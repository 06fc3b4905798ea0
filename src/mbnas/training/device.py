"""The one device helper: which device a setting means, its name, and what runs where.

:func:`select_device` turns ``auto``/``cpu``/``cuda``/``cuda:N``/``mps`` into a device,
refusing in one line a name that is not a device or a device this machine lacks; every
command (training, evaluation, cost, predict) goes through it.

Every training command prints :func:`describe_device` before it starts, so a run that
lands on the CPU because CUDA is missing is visible at once rather than after a day.
:func:`is_paper_scale` tells the protocols that a CPU cannot finish in reasonable time;
the CLI refuses them on the CPU unless ``--device cpu`` was asked for explicitly.
"""

from __future__ import annotations

import platform
from pathlib import Path

import torch

from mbnas.errors import ConfigError
from mbnas.training.protocol import PROTOCOLS, Protocol


def select_device(preference: str = "auto", what: str = "--device") -> torch.device:
    """``auto`` (CUDA when present, else the CPU), ``cpu``, ``cuda``, ``cuda:N`` or ``mps``.

    Args:
        preference: The setting.
        what: How the setting is named in a message.

    Raises:
        ConfigError: If the name is not a device, or names one this machine lacks.
    """
    if preference == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(preference)
    except (RuntimeError, ValueError) as exc:
        raise ConfigError(f"{what} {preference!r} is not a device ({exc}); use auto, cpu or "
                          "cuda") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        # "CUDA is not available": a run failing so on a worker is the machine's fault
        raise ConfigError(f"{what} {preference}: no CUDA device: CUDA is not available on "
                          "this machine; use --device cpu (or auto), or run on a machine "
                          "with a GPU")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"{what} {preference}: MPS is not available on this machine")
    if device.type not in ("cpu", "cuda", "mps"):
        raise ConfigError(f"{what} {preference!r} is not supported; use auto, cpu or cuda")
    return device


def use_bf16(protocol: Protocol, device: torch.device) -> bool:
    """Whether a run of ``protocol`` on ``device`` trains in bf16 autocast."""
    if protocol.precision == "fp32":
        return False
    if device.type == "cuda":
        return protocol.precision == "bf16" or torch.cuda.is_bf16_supported()
    if protocol.precision == "bf16":
        return True
    # On CPUs with native bf16 (AVX512-BF16/AMX) autocast made a U-Net step ~2.9x faster
    # (benchmarks/train_throughput.py); elsewhere bf16 is emulated and slower.
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def device_label(device: torch.device) -> str:
    """A device as cost figures record it: "cuda (<GPU name>)", or the kind ("cpu")."""
    if device.type == "cuda":
        return f"cuda ({device_name(device)})"
    return device.type


def device_name(device: torch.device) -> str:
    """The GPU's name, or the CPU's model name."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def describe_device(preference: str, protocol: Protocol, threads: int | None = None,
                    runs_per_device: int = 1) -> str:
    """One line: device kind and name, precision, CPU threads per run and where that came
    from (``--threads``, or the usable CPUs and their limit divided by the runs at once)."""
    from mbnas.training.cpus import cpu_budget

    device = select_device(preference)
    precision = "bf16 autocast" if use_bf16(protocol, device) else "fp32"
    kind = "GPU" if device.type == "cuda" else "CPU"
    if threads is not None:
        n_threads, source = threads, "--threads"
    else:
        budget = cpu_budget()
        n_threads, source = budget.threads_per_run(runs_per_device), budget.describe(
            runs_per_device)
    line = (f"device: {kind} {device_name(device)} ({device}), precision {precision}, "
            f"{n_threads} CPU thread(s) per run ({source})")
    if runs_per_device > 1:
        line += f", {runs_per_device} runs at once"
    return line


def is_paper_scale(protocol: Protocol) -> bool:
    """Whether a protocol trains at the size of a ``paper*`` preset.

    Size is what makes a protocol expensive: epochs, image size and network width at
    least those of a paper preset (folds and seeds only multiply the count of runs).
    """
    for name, preset in PROTOCOLS.items():
        if name.startswith("paper") and (
                protocol.epochs >= preset.epochs and protocol.image_size >= preset.image_size
                and protocol.base_channels >= preset.base_channels):
            return True
    return False


def needs_cpu_consent(preference: str, protocol: Protocol) -> bool:
    """A paper-scale protocol that would run on the CPU without ``--device cpu``."""
    return (preference != "cpu" and select_device(preference).type == "cpu"
            and is_paper_scale(protocol))


__all__ = ["describe_device", "device_label", "device_name", "is_paper_scale",
           "needs_cpu_consent", "select_device", "use_bf16"]


class _SlicedPointwiseConv2d(torch.nn.Conv2d):
    """A strided 1x1 convolution computed as slicing, then a stride-1 1x1 convolution.

    The same numbers and parameters as the ``nn.Conv2d`` it replaces, but it avoids
    oneDNN's strided 1x1 kernel, which corrupts the heap ("double free or corruption",
    the process dies) on channels-last CPU input of an odd batch size with two or more
    threads in torch 2.14.1. The Residual block's downscaling shortcut (and ResNet
    encoders) are such convolutions, and the last batch of an epoch is often odd.
    """

    def _conv_forward(self, input: torch.Tensor, weight: torch.Tensor,
                      bias: torch.Tensor | None) -> torch.Tensor:
        sh, sw = self.stride
        return torch.nn.functional.conv2d(input[:, :, ::sh, ::sw], weight, bias, 1, 0,
                                          self.dilation, self.groups)


def to_channels_last(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """``model`` in the channels-last memory format used for training; on the CPU its
    strided 1x1 convolutions are computed by slicing (see :class:`_SlicedPointwiseConv2d`)."""
    if device.type == "cpu":
        for module in model.modules():
            if (type(module) is torch.nn.Conv2d and module.kernel_size == (1, 1)
                    and module.stride != (1, 1) and module.padding == (0, 0)
                    and module.padding_mode == "zeros"):
                module.__class__ = _SlicedPointwiseConv2d
    return model.to(memory_format=torch.channels_last)
