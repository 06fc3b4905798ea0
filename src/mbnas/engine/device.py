"""Say what runs where: the device, precision and threads of a training command.

Every training command prints :func:`describe_device` before it starts, so a run that
lands on the CPU because CUDA is missing is visible at once rather than after a day.
:func:`is_paper_scale` tells the protocols that a CPU cannot finish in reasonable time;
the CLI refuses them on the CPU unless ``--device cpu`` was asked for explicitly.
"""

from __future__ import annotations

import platform
from pathlib import Path

import torch

from mbnas.engine.config import PROTOCOLS, Protocol
from mbnas.engine.train import select_device, use_bf16


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
    """One line: device kind and name, precision, CPU threads per run, runs at once."""
    device = select_device(preference)
    precision = "bf16 autocast" if use_bf16(protocol, device) else "fp32"
    n_threads = threads if threads is not None else torch.get_num_threads()
    kind = "GPU" if device.type == "cuda" else "CPU"
    line = (f"device: {kind} {device_name(device)} ({device}), precision {precision}, "
            f"{n_threads} CPU thread(s) per run")
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


__all__ = ["describe_device", "device_name", "is_paper_scale", "needs_cpu_consent"]
