"""Cost figures registered by name: what a search may limit or trade Dice against.

A :class:`CostFigure` says everything the rest of mbnas needs about one figure: its
unit and direction, whether ``--max-<name>`` may limit it (and the ``config.yaml`` key
the limit is saved under), whether ``--objectives`` may name it, how it is measured for
a network and an input shape, and how reports show it (axis label and scale, table
column and cell). Limits, Pareto search, the ``--max-*`` flags, the front's table and
plot and the card loop over :data:`COSTS`, so a new figure is one measuring function
and one :func:`register_cost`.

The built-in figures (parameters, MACs as the true count and in the paper's
convention, training activation memory, latency) register in :mod:`mbnas.costs.builtin`.
This module imports no torch: measuring functions import it when called, so strategies
and the command line read the registry without it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from mbnas.registry import Registry

__all__ = ["COSTS", "CostFigure", "Measure", "cost_names", "format_amount", "limit_figures",
           "objective_names", "register_cost"]

#: ``measure(model, input_shape, device) -> value``: ``model`` a torch module (fresh
#: weights), ``input_shape`` the full input of one forward pass (batch 1), ``device`` a
#: torch device (only device-dependent figures use it).
Measure = Callable[[Any, Sequence[int], Any], float]

_SI = (("G", 1e9), ("M", 1e6), ("K", 1e3))


def format_amount(value: float, unit: str = "") -> str:
    """A figure with a decimal suffix: 6.2e7 MAC -> ``62.0M MAC``; 12 -> ``12``."""
    for suffix, scale in _SI:
        if abs(value) >= scale:
            return f"{value / scale:.1f}{suffix} {unit}".rstrip()
    return f"{value:g} {unit}".rstrip()


@dataclass(frozen=True)
class CostFigure:
    """A registered cost figure (lower is better unless ``direction`` says otherwise).

    Attributes:
        name: What ``--objectives`` takes, the key of the figure in ``front.json``, the
            log's ``costs`` and the cost cache, and ``--max-<name>``'s name.
        measure: How it is measured (:data:`Measure`).
        unit: Its unit ("" for a count, "MAC", "B", "ms").
        about: One line for ``--help`` and the docs.
        direction: "min" (lower is better, every built-in figure) or "max".
        limit: The ``config.yaml`` key of its hard limit (``max_params``), or None when it
            cannot be limited; the flag is ``--max-<name>``.
        objective: Whether ``--objectives`` may name it; objective figures are measured
            for every network a cost-aware search evaluates and stored in ``front.json``.
        device: Whether the value depends on the device measured on (latency): cached
            per device.
        axis: The front plot's axis label; ``scale``: factor to the unit on that axis.
        column: The front table's column title.
        cell: ``cell(value, image_size) -> text`` of a table cell; None: the amount with
            its unit (:func:`format_amount`).
        text: ``text(value) -> str`` in limits and messages; None: :func:`format_amount`.
    """

    name: str
    measure: Measure
    unit: str = ""
    about: str = ""
    direction: str = "min"
    limit: str | None = None
    objective: bool = True
    device: bool = False
    axis: str = ""
    scale: float = 1.0
    column: str = ""
    cell: Callable[[float, int], str] | None = None
    text: Callable[[float], str] | None = None

    def __post_init__(self) -> None:
        if self.direction not in ("min", "max"):
            raise ValueError(f"cost {self.name!r}: direction must be 'min' or 'max', "
                             f"got {self.direction!r}")

    @property
    def limit_field(self) -> str:
        """The ``config.yaml`` key of its limit (``max_<name>`` unless registered)."""
        return self.limit or f"max_{self.name}"

    @property
    def flag(self) -> str:
        """The command-line flag of its limit (``--max-latency-ms``)."""
        return "--" + self.limit_field.replace("_", "-")

    def format(self, value: float) -> str:
        """The value as limits and messages show it (``62.0M MAC``, ``3.14 ms``)."""
        return self.text(value) if self.text is not None else format_amount(value, self.unit)

    def format_cell(self, value: float | None, image_size: int) -> str:
        """The front table's cell; "not measured" for a figure a file does not hold."""
        if value is None:
            return "not measured"
        if self.cell is not None:
            return self.cell(float(value), image_size)
        return self.format(float(value))

    def oriented(self, value: float) -> float:
        """The value as a quantity to maximise (Pareto search compares these)."""
        return -float(value) if self.direction == "min" else float(value)


#: Every cost figure, by name. Built-in: :mod:`mbnas.costs.builtin`, imported on first look-up.
COSTS: Registry[CostFigure] = Registry(
    "cost figure", "cost figures: measured for a network at an input shape; limits and "
    "objectives of a search", builtins=("mbnas.costs.builtin",))


def register_cost(name: str, **fields: Any) -> Callable[[Measure], Measure]:
    """Register a measuring function under ``name`` in :data:`COSTS`; ``fields`` are
    those of :class:`CostFigure`. A duplicate name is an error."""
    return COSTS.decorator(name, lambda measure: CostFigure(name, measure, **fields))


def cost_names() -> tuple[str, ...]:
    """Every registered figure, the built-in ones first."""
    return COSTS.names()


def objective_names() -> tuple[str, ...]:
    """The figures ``--objectives`` may name (and ``front.json`` holds)."""
    return tuple(n for n, f in COSTS.items() if f.objective)


def limit_figures() -> dict[str, CostFigure]:
    """{name: figure} of the figures a hard limit may bound, in registry order."""
    return {n: f for n, f in COSTS.items() if f.limit is not None}
