"""The report's input data: what ``mbnas evaluate`` measured, store-independent.

A :class:`ModelEvaluation` is one network (a searched one or a baseline) retrained
with several seeds on every fold of the cross-validation. It holds:

* ``cases``: one :class:`CaseScore` per (seed, fold, validation case), the numbers
  behind Table 1 and the box plots;
* ``run_scores``: the run-level validation Dice per (seed, fold), the paired numbers
  behind the Friedman and Wilcoxon tests (when empty, they are computed from
  ``cases`` as the mean over each run's cases);
* ``cost``: a :class:`ModelCost` (MACs, parameters, latency, peak memory).

Everything is a frozen dataclass with a JSON round-trip (``to_dict``/``from_dict``),
so the lead's ``evaluate`` command can save it and ``report`` can read it back.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mbnas.errors import MbnasError
from mbnas.metrics.registry import DICE, METRICS

__all__ = ["CaseScore", "ModelCost", "ModelEvaluation", "ReportError", "KINDS"]

#: The two kinds of model in a report.
KINDS = ("searched", "baseline")


class ReportError(MbnasError):
    """Report input that cannot be used (a malformed evaluation file, mismatched arrays)."""


def _float(d: Mapping[str, Any], key: str, where: str) -> float:
    try:
        return float(d[key])
    except KeyError:
        raise ReportError(f"{where}: missing field {key!r}") from None
    except (TypeError, ValueError):
        raise ReportError(f"{where}: {key} must be a number, got {d[key]!r}") from None


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


@dataclass(frozen=True)
class CaseScore:
    """The metrics of one validation case of one run (one seed, one fold).

    Attributes:
        model: Name of the model (as in :attr:`ModelEvaluation.name`).
        seed: Initialisation seed of the run.
        fold: Cross-validation fold of the run.
        case_id: The validation case (patient).
        values: Metric name -> its value reduced over the foreground classes. A metric
            that is missing was not measured (an evaluation older than the metric, an
            nnU-Net row that has Dice only); it is never a 0 or a NaN stand-in.
        per_class: Class name -> ``{metric name: value}``; may be empty.
        slices: Per-slice (paper-comparable) scores: the case's slices (else None).
        both_empty: Of those, the slices whose prediction and reference are both empty
            (scored as perfect by the paper's convention); None when not recorded.
    """

    model: str
    seed: int
    fold: int
    case_id: str
    values: Mapping[str, float] = field(default_factory=dict)
    per_class: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    slices: int | None = None
    both_empty: int | None = None

    def value(self, metric: str) -> float:
        """The value of ``metric``; NaN when it was not measured."""
        return float(self.values.get(metric, math.nan))

    @property
    def dice(self) -> float:
        """The Dice (the search's objective and the paired tests' number); NaN if absent."""
        return self.value(DICE)

    def to_dict(self) -> dict[str, Any]:
        out = {
            "model": self.model, "seed": self.seed, "fold": self.fold,
            "case_id": self.case_id, "metrics": {k: float(v) for k, v in self.values.items()},
            "per_class": {str(k): dict(v) for k, v in self.per_class.items()},
        }
        if self.slices is not None:  # only the per-slice scores have them
            out.update(slices=self.slices, both_empty=self.both_empty)
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CaseScore:
        """Read :meth:`to_dict`'s dict, or an older one with each registered metric as a
        top-level field (then a metric it lacks reads as not measured)."""
        if not isinstance(d, Mapping):
            raise ReportError(f"a case score must be a mapping, got {d!r}")
        where = f"case score {d.get('case_id', '?')!r}"
        try:
            seed, fold = int(d["seed"]), int(d["fold"])
            model, case_id = str(d["model"]), str(d["case_id"])
        except KeyError as e:
            raise ReportError(f"{where}: missing field {e.args[0]!r}") from None
        stored = d.get("metrics")
        if stored is None:  # written before metrics were registered definitions
            stored = {n: d[n] for n in METRICS.names() if n in d}
        if not isinstance(stored, Mapping):
            raise ReportError(f"{where}: metrics must be a mapping, got {stored!r}")
        values = {str(k): _float(stored, k, where) for k in stored}
        per_class = {
            str(k): {m: float(x) for m, x in v.items()} for k, v in d.get("per_class", {}).items()
        }
        counts = [None if d.get(k) is None else int(d[k]) for k in ("slices", "both_empty")]
        return cls(model, seed, fold, case_id, values, per_class, *counts)


@dataclass(frozen=True)
class ModelCost:
    """Cost figures of one network; any figure not measured is None.

    Attributes:
        params: Number of trainable parameters.
        macs: Multiply-accumulate operations of one forward pass at ``macs_input_size``.
        macs_input_size: (height, width) of the input the MACs were counted at (a 3D
            network: its training patch, (x, y, z)).
        macs_32: MACs at a 32x32 input, true count.
        macs_paper: MACs at a 32x32 input in the paper's convention (thop 0.0.31: each
            2x2 stride-2 transposed convolution 4x, BatchNorm and LeakyReLU counted),
            the figure the paper's MMAC column holds.
        latency_ms: Forward-pass latency in milliseconds (batch of one).
        peak_memory_mb: Peak memory of a forward pass in MiB.
        device: Where latency and memory were measured (e.g. "cpu", "NVIDIA H100").
        more: Every other registered cost figure (:data:`mbnas.costs.registry.COSTS`, a
            plugin's), by name; stored only when there is one, so files of the built-in
            figures are unchanged.
    """

    params: int | None = None
    macs: float | None = None
    macs_input_size: tuple[int, ...] | None = None
    macs_32: float | None = None
    macs_paper: float | None = None
    latency_ms: float | None = None
    peak_memory_mb: float | None = None
    device: str | None = None
    more: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "params": self.params, "macs": self.macs,
            "macs_input_size": list(self.macs_input_size) if self.macs_input_size else None,
            "macs_32": self.macs_32, "macs_paper": self.macs_paper,
            "latency_ms": self.latency_ms,
            "peak_memory_mb": self.peak_memory_mb, "device": self.device,
        }
        if self.more:
            out["more"] = dict(self.more)
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> ModelCost:
        if d is None:
            return cls()
        if not isinstance(d, Mapping):
            raise ReportError(f"a model cost must be a mapping, got {d!r}")
        size = d.get("macs_input_size")
        if size is not None and (not isinstance(size, (list, tuple)) or len(size) not in (2, 3)):
            raise ReportError(f"macs_input_size must be [height, width] (or a 3D patch "
                              f"[x, y, z]), got {size!r}")
        return cls(
            params=None if d.get("params") is None else int(d["params"]),
            macs=_opt_float(d.get("macs")),
            macs_input_size=None if size is None else tuple(int(v) for v in size),
            macs_32=_opt_float(d.get("macs_32")),
            macs_paper=_opt_float(d.get("macs_paper")),
            latency_ms=_opt_float(d.get("latency_ms")),
            peak_memory_mb=_opt_float(d.get("peak_memory_mb")),
            device=d.get("device"),
            more={str(k): float(v) for k, v in (d.get("more") or {}).items()},
        )


@dataclass(frozen=True)
class ModelEvaluation:
    """One network retrained over seeds x folds, with its per-case scores and cost.

    Attributes:
        name: Display name ("MB-NAS", "U-Net", ...); unique within a report.
        kind: "searched" (found by a search run) or "baseline" (hand-crafted).
        architecture: The genotype dict of a searched network, or a description of a
            baseline (``{"kind": "baseline", "name": "unet"}``, see
            :mod:`mbnas.spaces.mbnas.baselines`).
        cases: Every validation case of every (seed, fold) run.
        run_scores: (seed, fold) -> run-level validation Dice. Empty: computed from
            ``cases`` (see :meth:`paired_dice`).
        cost: The network's cost figures.
        source_run: The search run folder a searched network came from, if any.
        paper_cases: The same runs' cases measured as the paper did: per 2D slice on
            the training grid, averaged over each case's slices
            (:mod:`mbnas.metrics.slices`); may be empty.
        width: The width the model was trained at, in words (e.g. "8 base channels").
    """

    name: str
    kind: str
    architecture: Mapping[str, Any] = field(default_factory=dict)
    cases: tuple[CaseScore, ...] = ()
    run_scores: Mapping[tuple[int, int], float] = field(default_factory=dict)
    cost: ModelCost = field(default_factory=ModelCost)
    source_run: str | None = None
    paper_cases: tuple[CaseScore, ...] = ()
    width: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ReportError(f"model {self.name!r}: kind {self.kind!r} is not one of {KINDS}")
        if not isinstance(self.cases, tuple):
            object.__setattr__(self, "cases", tuple(self.cases))
        if not isinstance(self.paper_cases, tuple):
            object.__setattr__(self, "paper_cases", tuple(self.paper_cases))
        for c in (*self.cases, *self.paper_cases):
            if c.model != self.name:
                raise ReportError(
                    f"model {self.name!r} holds a case score of model {c.model!r} "
                    f"(case {c.case_id!r}, seed {c.seed}, fold {c.fold})"
                )

    def paired_dice(self) -> dict[tuple[int, int], float]:
        """Run-level Dice per (seed, fold): ``run_scores``, or each run's mean case Dice."""
        if self.run_scores:
            return {(int(s), int(f)): float(v) for (s, f), v in self.run_scores.items()}
        runs: dict[tuple[int, int], list[float]] = {}
        for c in self.cases:
            runs.setdefault((c.seed, c.fold), []).append(c.dice)
        return {k: float(np.mean(v)) for k, v in sorted(runs.items())}

    def mean_dice(self) -> float:
        """Mean Dice over every case of every run (Table 1's DSC); NaN with no data."""
        if self.cases:
            return float(np.mean([c.dice for c in self.cases]))
        runs = self.paired_dice()
        return float(np.mean(list(runs.values()))) if runs else math.nan

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "kind": self.kind, "architecture": dict(self.architecture),
            "cases": [c.to_dict() for c in self.cases],
            "run_scores": [{"seed": s, "fold": f, "dice": v}
                           for (s, f), v in sorted(self.run_scores.items())],
            "cost": self.cost.to_dict(), "source_run": self.source_run,
            "paper_cases": [c.to_dict() for c in self.paper_cases], "width": self.width,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ModelEvaluation:
        if not isinstance(d, Mapping) or "name" not in d or "kind" not in d:
            raise ReportError("a model evaluation must be a mapping with 'name' and 'kind'")
        try:
            runs = {(int(r["seed"]), int(r["fold"])): float(r["dice"])
                    for r in d.get("run_scores", [])}
        except (KeyError, TypeError, ValueError):
            raise ReportError(
                f"model {d['name']!r}: run_scores must be a list of {{seed, fold, dice}}"
            ) from None
        return cls(
            name=str(d["name"]), kind=str(d["kind"]),
            architecture=dict(d.get("architecture") or {}),
            cases=tuple(CaseScore.from_dict(c) for c in d.get("cases", [])),
            run_scores=runs, cost=ModelCost.from_dict(d.get("cost")),
            source_run=d.get("source_run"),
            paper_cases=tuple(CaseScore.from_dict(c) for c in d.get("paper_cases") or []),
            width=d.get("width"),
        )
