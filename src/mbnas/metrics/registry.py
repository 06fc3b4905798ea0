"""Metrics as registered definitions: a function of (prediction, reference, spacing) and
everything a table, figure or average needs to know about it.

A :class:`MetricDefinition` carries the function, its label and unit, its direction and
decimals, its values for empty masks and how it reduces over the classes of a case and
over the slices of the paper's per-slice protocol. The case, slice, external and report
code loop over :data:`METRICS`, so a new metric is one module with one
:func:`register_metric` and its name in ``METRICS``' built-ins (``docs/extending.md ("A metric")``).

The empty-mask policy lives here, in :meth:`MetricDefinition.compute`: a registered
function only ever sees two non-empty masks, and every value is finite (MONAI returns NaN
or inf, which then silently drops out of a ``nanmean``: MONAI issue 9095).

This module imports nothing heavy (NumPy for the mask checks), so reports and the CLI
can read labels without torch or MONAI.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mbnas.errors import MetricError
from mbnas.metrics.masks import check_pair, check_spacing
from mbnas.registry import Registry

__all__ = ["DICE", "METRICS", "REDUCTIONS", "MetricDefinition", "metric_definitions",
           "register_metric"]

#: The metric the search optimises and the paired tests compare (its name, registered once).
DICE = "dice"

#: How values reduce over classes or slices.
REDUCTIONS: dict[str, Callable[[Sequence[float]], float]] = {
    "mean": lambda v: math.fsum(v) / len(v),
    "max": max,
}

MetricFunction = Callable[..., float]
EmptyValue = float | Callable[[Sequence[int], Sequence[float]], float]


@dataclass(frozen=True)
class MetricDefinition:
    """One registered metric.

    Attributes:
        name: The registered name; the key of stored values ("dice", "hd95").
        function: ``f(pred, ref, spacing, **settings) -> float`` of two non-empty boolean
            masks of one shape (2D or 3D) and the voxel size in mm per axis.
        label: Name for axes and prose ("Surface Dice").
        header: Table column header; may name settings (``"SD ({tolerance_mm:g} mm)"``).
        unit: ``"mm"`` for a distance (it then scales with the spacing), ``""`` for a ratio.
        higher_is_better: The direction that is best (bold in tables).
        decimals: Decimals of the mean in tables and summaries.
        both_empty: The value when both masks are empty (nothing to find, nothing found).
        one_empty: The value when exactly one is empty: a number, or a function of
            (shape, spacing) such as :func:`~mbnas.metrics.masks.image_diagonal_mm`.
        classes: Reduction over the foreground classes of a case (``mean`` or ``max``).
        slice_classes: Reduction over the classes of one slice (the paper's protocol).
        slices: Reduction over a case's slices (the paper's protocol).
        symmetric: ``f(pred, ref) == f(ref, pred)``.
        column: Key of its column in Table 1's CSV and JSON (default: the name).
        settings: The protocol settings the function reads, passed as keywords
            (today only ``tolerance_mm``, the Surface Dice tolerance).
        about: One line for the docs.
    """

    name: str
    function: MetricFunction
    label: str
    header: str
    unit: str
    higher_is_better: bool
    decimals: int
    both_empty: float
    one_empty: EmptyValue
    classes: str = "mean"
    slice_classes: str = "mean"
    slices: str = "mean"
    symmetric: bool = True
    column: str = ""
    settings: tuple[str, ...] = ()
    about: str = ""

    def __post_init__(self) -> None:
        for what in ("classes", "slice_classes", "slices"):
            if getattr(self, what) not in REDUCTIONS:
                raise ValueError(f"metric {self.name!r}: {what} must be one of "
                                 f"{', '.join(REDUCTIONS)}, got {getattr(self, what)!r}")
        if not self.column:
            object.__setattr__(self, "column", self.name)

    @property
    def axis_label(self) -> str:
        """The label with its unit, for axes: "HD95 (mm)"."""
        return f"{self.label} ({self.unit})" if self.unit else self.label

    def column_header(self, **settings: Any) -> str:
        """The table header, with the settings it names filled in."""
        return self.header.format(**settings)

    def empty_value(self, shape: Sequence[int], spacing: Sequence[float], both: bool) -> float:
        """The value of a pair with both masks empty (``both``) or exactly one."""
        if both:
            return float(self.both_empty)
        value = self.one_empty
        return float(value(shape, spacing) if callable(value) else value)

    def reduce(self, values: Sequence[float], how: str) -> float:
        """``values`` reduced by the reduction named by field ``how`` ("classes", ...)."""
        if not values:
            raise MetricError(f"metric {self.name}: nothing to reduce over {how}")
        return float(REDUCTIONS[getattr(self, how)](list(values)))

    def compute(self, pred: Any, ref: Any, spacing: Sequence[float], **settings: Any) -> float:
        """The metric of one binary mask pair, the empty-mask policy applied.

        Args:
            pred: Predicted mask, 2D or 3D (NumPy array or torch tensor; bool or 0/1).
            ref: Reference mask of the same shape.
            spacing: Voxel size in mm, one value per axis (required).
            **settings: Protocol settings; those named in :attr:`settings` are passed on.

        Raises:
            MetricError: Masks that are not binary or differ in shape, a bad spacing, or
                a setting the metric needs that was not given.
        """
        p, r = check_pair(pred, ref)
        return self.compute_checked(p, r, check_spacing(spacing, p.ndim), **settings)

    def compute_checked(self, p: np.ndarray, r: np.ndarray, values: tuple[float, ...],
                        **settings: Any) -> float:
        """:meth:`compute` of masks and spacing already checked (``check_pair`` and
        ``check_spacing``): for loops measuring many metrics of one pair."""
        p_any, r_any = bool(p.any()), bool(r.any())
        if not (p_any and r_any):
            return self.empty_value(p.shape, values, both=not (p_any or r_any))
        missing = [s for s in self.settings if s not in settings]
        if missing:
            raise MetricError(f"metric {self.name} needs the setting(s) {', '.join(missing)}")
        value = float(self.function(p, r, values, **{s: settings[s] for s in self.settings}))
        if not math.isfinite(value):
            raise MetricError(f"metric {self.name} gave {value} for two non-empty masks")
        return value


#: Every metric, in table order; the built-ins register in these modules.
METRICS: Registry[MetricDefinition] = Registry(
    "metric", "segmentation metrics of a (prediction, reference, spacing) triple",
    error=MetricError,
    builtins=("mbnas.metrics.definitions", "mbnas.metrics.assd"))


def register_metric(name: str, **fields: Any) -> Callable[[MetricFunction], MetricFunction]:
    """Register the decorated function as metric ``name``; ``fields`` are the remaining
    :class:`MetricDefinition` fields (label, header, unit, direction, decimals, ...)."""
    return METRICS.decorator(name, lambda f: MetricDefinition(name, f, **fields))


def metric_definitions() -> tuple[MetricDefinition, ...]:
    """Every registered definition, in table order."""
    return tuple(d for _, d in METRICS.items())
