"""The built-in cost figures: parameters, MACs (true count and the paper's convention),
training activation memory and latency.

Each is one measuring function and one :func:`~mbnas.costs.registry.register_cost`; the
counters themselves are in :mod:`mbnas.costs.measure` (torch), imported when a figure is
measured, so registering these imports no torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mbnas.costs.registry import register_cost


@register_cost("params", about="parameters of the network", limit="max_params",
               axis="parameters (M)", scale=1e-6, column="params",
               cell=lambda v, _size: f"{v / 1e6:.3f} M")
def measure_params(model: Any, shape: Sequence[int], device: Any) -> float:
    from mbnas.costs.measure import count_parameters

    return float(count_parameters(model))


@register_cost("macs", unit="MAC", about="multiply-accumulates of one forward pass, batch 1, "
               "at the training size (true count)", limit="max_macs",
               axis="MACs per forward pass (M)", scale=1e-6, column="MACs",
               cell=lambda v, size: f"{v / 1e6:.1f} M @ {size}")
def measure_macs(model: Any, shape: Sequence[int], device: Any) -> float:
    from mbnas.costs.measure import count_macs

    return float(count_macs(model, shape))


@register_cost("memory", unit="B", about="activation memory a training step keeps for "
               "backward, per sample, at the training size", limit="max_memory",
               axis="training activation memory per sample (MiB)", scale=2.0 ** -20,
               column="memory/sample", cell=lambda v, _size: f"{v / 2 ** 20:.1f} MiB")
def measure_memory(model: Any, shape: Sequence[int], device: Any) -> float:
    from mbnas.costs.measure import peak_activation_memory

    # per sample, measured at batch 2 (BatchNorm cannot train on one 1x1 sample)
    return float(peak_activation_memory(model, (2, *shape[1:])) // 2)


@register_cost("latency", unit="ms", about="milliseconds of a batch-1 forward pass at the "
               "training size on the latency device (median after warm-up)",
               limit="max_latency_ms", device=True, axis="latency, batch 1 (ms)",
               column="latency", text=lambda v: f"{v:.2f} ms",
               cell=lambda v, _size: f"{v:.2f} ms")
def measure_latency(model: Any, shape: Sequence[int], device: Any) -> float:
    from mbnas.costs.measure import latency_ms

    return latency_ms(model, tuple(shape), device)


@register_cost("macs_paper", unit="MAC", about="MACs of one forward pass in the paper's "
               "convention (thop 0.0.31: its Table 1)", objective=False,
               axis="MACs, the paper's convention (M)", scale=1e-6, column="MACs (paper)",
               cell=lambda v, size: f"{v / 1e6:.1f} M @ {size}")
def measure_macs_paper(model: Any, shape: Sequence[int], device: Any) -> float:
    from mbnas.costs.measure import count_macs_paper

    return float(count_macs_paper(model, shape))
