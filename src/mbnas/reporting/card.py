"""The NAS reporting card: what a reader needs to judge and repeat a NAS study.

After the field audit of NAS for medical segmentation (few studies report external
validation, search stability, compute or cost), the card lists, for one report:
dataset and splits, search space and its size, strategy and budget, the
performance-estimation protocol, compute used, seeds, search stability, external
validation, network cost and software versions / config hashes. A value that is not
known says so ("not available"; external validation defaults to "not done").
"""

from __future__ import annotations

import itertools
import math
import platform
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from importlib import metadata
from typing import Any

import numpy as np

from mbnas.reporting.report_data import ModelEvaluation, ReportError
from mbnas.spaces.languages import describe

__all__ = ["NOT_AVAILABLE", "NOT_DONE", "CARD_SECTIONS", "ReportingCard", "genotype_similarity",
           "stability", "software_versions", "cost_summary"]

NOT_AVAILABLE = "not available"
NOT_DONE = "not done"
#: A card value: text, or a mapping / list rendered as a nested list.
CardValue = str | Mapping[str, Any] | Sequence[Any]

#: (section heading, ((field, label), ...)) in the order the card shows them.
CARD_SECTIONS: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    ("Dataset and splits", (("dataset", "Dataset"), ("cases", "Cases"), ("folds", "Folds"),
                            ("split_seed", "Split seed"), ("splits_file", "Splits file"))),
    ("Search space", (("search_space", "Search space"),
                      ("search_space_size", "Search space size"))),
    ("Search strategy and budget", (("strategy", "Strategy"), ("budget", "Budget"),
                                    ("objectives", "Objectives and cost limits"))),
    ("Performance estimation", (("epochs", "Epochs"), ("folds_x_seeds", "Folds x seeds"),
                                ("image_size", "Image size"),
                                ("score_definition", "Score definition"))),
    ("Compute used", (("device", "Device"), ("search_hours", "Hours per search"),
                      ("search_trainings", "Trainings per search"),
                      ("evaluation_hours", "Hours per evaluation"))),
    ("Seeds", (("seeds", "Seeds"),)),
    ("Search stability", (("search_stability", "Search stability"),)),
    ("External validation", (("external_validation", "External / held-out-site validation"),)),
    ("Network cost", (("network_cost", "Cost of the networks"),)),
    ("Software and configuration", (("software_versions", "Software versions"),
                                    ("config_hashes", "Config hashes"))),
)


@dataclass(frozen=True)
class ReportingCard:
    """The NAS reporting card; see :data:`CARD_SECTIONS` for headings and labels.

    Every field is text or a mapping/list (rendered as a nested list), e.g.
    ``search_hours={"MB-NAS seed 0": "3.2 GPU h (H100)"}``,
    ``search_stability=stability(scores, genotypes)``,
    ``network_cost=cost_summary(evals)``, ``software_versions=software_versions()``.
    """

    dataset: CardValue = NOT_AVAILABLE
    cases: CardValue = NOT_AVAILABLE
    folds: CardValue = NOT_AVAILABLE
    split_seed: CardValue = NOT_AVAILABLE
    splits_file: CardValue = NOT_AVAILABLE
    search_space: CardValue = NOT_AVAILABLE
    search_space_size: CardValue = NOT_AVAILABLE
    strategy: CardValue = NOT_AVAILABLE
    budget: CardValue = NOT_AVAILABLE
    objectives: CardValue = "Dice only, no cost limits"
    epochs: CardValue = NOT_AVAILABLE
    folds_x_seeds: CardValue = NOT_AVAILABLE
    image_size: CardValue = NOT_AVAILABLE
    score_definition: CardValue = NOT_AVAILABLE
    device: CardValue = NOT_AVAILABLE
    search_hours: CardValue = NOT_AVAILABLE
    search_trainings: CardValue = NOT_AVAILABLE
    evaluation_hours: CardValue = NOT_AVAILABLE
    seeds: CardValue = NOT_AVAILABLE
    search_stability: CardValue = NOT_AVAILABLE
    external_validation: CardValue = NOT_DONE
    network_cost: CardValue = NOT_AVAILABLE
    software_versions: CardValue = NOT_AVAILABLE
    config_hashes: CardValue = NOT_AVAILABLE

    def sections(self) -> list[tuple[str, list[tuple[str, CardValue]]]]:
        """(heading, [(label, value), ...]) in display order."""
        return [(head, [(label, getattr(self, name)) for name, label in items])
                for head, items in CARD_SECTIONS]

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ReportingCard:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ReportError(f"unknown reporting card fields {unknown}; known: {sorted(known)}")
        return cls(**dict(d))


def _nodes(genotype: Any) -> list[Mapping[str, str]] | None:
    """The architecture's variables per node, as its language's codec describes them."""
    described = describe(genotype)
    return None if described is None else list(described.values())


def genotype_similarity(a: Any, b: Any) -> float:
    """Fraction of node variables that are equal in two genotypes (1.0: identical).

    Architectures are dicts of any registered language (or objects with ``to_dict()``),
    read through the language's codec (:func:`mbnas.spaces.languages.describe`): for a
    genotype, its nodes' ``channels``, ``block``, ``kernel`` and ``skip``. Nodes are
    compared position by position, variable by variable; a node or variable present in
    only one architecture counts as unequal. Anything no codec reads (e.g. a baseline's
    description) gives NaN: the similarity is undefined.
    """
    na, nb = _nodes(a), _nodes(b)
    if na is None or nb is None:
        return math.nan
    equal = total = 0
    for x, y in itertools.zip_longest(na, nb, fillvalue={}):
        keys = set(x) | set(y)
        total += len(keys)
        equal += sum(1 for k in keys if k in x and k in y and x[k] == y[k])
    return equal / total if total else math.nan


def stability(best_scores: Sequence[float], best_genotypes: Sequence[Any],
              labels: Sequence[str] | None = None) -> dict[str, Any]:
    """Search stability over several runs of one search space (e.g. different seeds).

    Args:
        best_scores: The best search score of each run.
        best_genotypes: The best genotype of each run, same order.
        labels: A name for each run (e.g. "MB-NAS seed 1"); default "run 0", "run 1", ...

    Returns:
        ``runs``; the spread of the best scores (``best_score_mean``, ``best_score_std``
        (sample std, ddof=1), ``best_score_min``, ``best_score_max``,
        ``best_score_range``); the pairwise similarity of the best genotypes
        (``genotype_similarity``: {"<label i> vs <label j>": s}, NaN where a best
        architecture is not a genotype),
        ``genotype_similarity_mean``, ``genotype_similarity_min``); and a ``note``.
        Values that need two runs are None with one run.
    """
    if len(best_scores) != len(best_genotypes):
        raise ReportError(f"stability needs one genotype per score: got {len(best_scores)} "
                          f"scores and {len(best_genotypes)} genotypes")
    names = list(labels) if labels is not None else [f"run {i}" for i in range(len(best_scores))]
    if len(names) != len(best_scores) or len(set(names)) != len(names):
        raise ReportError(f"stability needs one distinct label per run, got {names}")
    scores = np.asarray(best_scores, dtype=float)
    n = int(scores.size)
    out: dict[str, Any] = {"runs": n}
    if n == 0:
        return {**out, "note": "no runs: stability not measured"}
    pairs = {f"{names[i]} vs {names[j]}": genotype_similarity(best_genotypes[i], best_genotypes[j])
             for i, j in itertools.combinations(range(n), 2)}
    sims = [v for v in pairs.values() if not math.isnan(v)]
    out.update({
        "best_score_mean": float(scores.mean()),
        "best_score_std": float(scores.std(ddof=1)) if n > 1 else None,
        "best_score_min": float(scores.min()),
        "best_score_max": float(scores.max()),
        "best_score_range": float(scores.max() - scores.min()),
        "genotype_similarity": pairs,
        "genotype_similarity_mean": float(np.mean(sims)) if sims else None,
        "genotype_similarity_min": float(np.min(sims)) if sims else None,
    })
    out["note"] = ("one run: stability needs several runs of the same search space" if n == 1
                   else "similarity = fraction of node variables equal, per pair of runs")
    return out


def software_versions() -> dict[str, str]:
    """Versions of Python and the libraries a result depends on ("not installed" if absent)."""
    out = {"python": platform.python_version(), "platform": platform.platform()}
    for dist in ("mbnas", "torch", "monai", "numpy", "scipy", "segmentation-models-pytorch",
                 "nibabel", "matplotlib"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out


def _mega(x: float) -> str:
    m = x / 1e6
    return f"{m:,.0f}" if abs(m) >= 100 else f"{m:.3g}"


def cost_summary(evals: Sequence[ModelEvaluation]) -> dict[str, str]:
    """One line per model: parameters, MACs (and at 32x32), latency and peak memory."""
    out = {}
    for e in evals:
        c = e.cost
        parts = ["params not available" if c.params is None else f"{c.params / 1e6:.3g} M params"]
        if c.macs is not None:
            size = f" at {c.macs_input_size[0]}x{c.macs_input_size[1]}" if c.macs_input_size else ""
            parts.append(f"{_mega(c.macs)} MMAC{size}")
        if c.macs_32 is not None and tuple(c.macs_input_size or ()) != (32, 32):
            parts.append(f"{_mega(c.macs_32)} MMAC at 32x32")
        where = f" ({c.device})" if c.device else ""
        if c.latency_ms is not None:
            parts.append(f"latency {c.latency_ms:.3g} ms{where}")
        if c.peak_memory_mb is not None:
            parts.append(f"peak memory {c.peak_memory_mb:.4g} MiB{where}")
        if e.width:
            parts.append(f"trained at {e.width}")
        out[e.name] = "; ".join(parts)
    return out
