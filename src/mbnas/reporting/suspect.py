"""Results that look like numbers but say little: flagged in the report, never hidden.

- a run whose last validation prediction was one class on every pixel (a network stuck
  at a constant mask after too few epochs): its Dice depends on the data, not the
  architecture;
- different architectures with bit-identical per-case scores: usually the same constant
  mask, so the table's ranking between them is meaningless.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from mbnas.reporting.report_data import ModelEvaluation

__all__ = ["constant_search_notes", "identical_scores", "suspect_notes"]


def identical_scores(evals: Sequence[ModelEvaluation]) -> list[list[str]]:
    """Groups of two or more models whose per-case (seed, fold, case, Dice) are equal."""
    groups: dict[tuple, list[str]] = {}
    for e in evals:
        if not e.cases:
            continue
        key = tuple(sorted((c.seed, c.fold, c.case_id, c.dice) for c in e.cases))
        groups.setdefault(key, []).append(e.name)
    return [names for names in groups.values() if len(names) > 1]


def suspect_notes(evals: Sequence[ModelEvaluation],
                  constant_runs: Mapping[str, Sequence[str]]) -> list[str]:
    """One note per suspect finding (see the module docstring), for the report's intro.

    Args:
        evals: The evaluated models.
        constant_runs: Model name -> its runs (``"fold F seed S"``) whose validation
            prediction was constant.
    """
    notes = []
    for name, runs in constant_runs.items():
        if runs:
            notes.append(f"{name}: {len(runs)} run(s) predicted one class on every "
                         f"validation pixel ({', '.join(runs)}); their scores reflect the "
                         "data, not the architecture (train longer)")
    for names in identical_scores(evals):
        notes.append(f"{', '.join(names)} have identical per-case scores although they "
                     "are different models: most likely the same constant prediction, so "
                     "their ranking means nothing")
    return notes


def constant_search_notes(runs: Sequence[tuple[str, Sequence[Mapping]]]) -> list[str]:
    """One note per search run with evaluations scored on a constant prediction.

    Args:
        runs: (label, search log entries) per search run; an entry's ``constant_runs``
            counts its training runs whose validation prediction was one class.
    """
    notes = []
    for label, log in runs:
        hit = [e for e in log if e.get("constant_runs")]
        if hit:
            notes.append(f"search {label}: {len(hit)} of {len(log)} evaluation(s) had runs "
                         "that predicted one class on every validation pixel; their search "
                         "scores reflect the data, not the architecture (train longer)")
    return notes
