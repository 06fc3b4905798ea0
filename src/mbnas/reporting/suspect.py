"""Results that look like numbers but say little: flagged in the report, never hidden.

- a run whose last validation prediction was one class on every pixel (a network stuck
  at a constant mask after too few epochs): its Dice depends on the data, not the
  architecture;
- different architectures with bit-identical per-case scores: usually the same constant
  mask, so the table's ranking between them is meaningless;
- a fold that scores exactly 0.0 for every network (e.g. validation cases whose
  foreground a crop removed): a constant added to every score, which ranks nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from mbnas.reporting.report_data import ModelEvaluation

__all__ = ["constant_search_notes", "identical_scores", "suspect_notes", "zero_fold_notes"]


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
    return notes + _zero_folds_of_models(evals)


def _zero_folds_of_models(evals: Sequence[ModelEvaluation]) -> list[str]:
    """The evaluation's folds whose every run of every model scored Dice exactly 0.0."""
    by_fold: dict[int, list[float]] = {}
    for e in evals:
        for (_, fold), dice in e.paired_dice().items():
            by_fold.setdefault(fold, []).append(dice)
    scored = [e for e in evals if e.paired_dice()]
    if len(scored) < 2:
        return []
    notes = []
    for fold, scores in sorted(by_fold.items()):
        if any(s != 0.0 for s in scores):
            continue
        cases = sorted({c.case_id for e in evals for c in e.cases if c.fold == fold})
        shown = f"; its validation cases: {', '.join(cases)}" if cases else ""
        notes.append(f"fold {fold} scores Dice exactly 0.0 for every model "
                     f"({', '.join(e.name for e in scored)}){shown}: {_ZERO_FOLD}")
    return notes


_ZERO_FOLD = ("a constant that adds nothing to any ranking; check that those cases' labels "
              "survive preprocessing (a crop may remove them) or use other folds")


def zero_fold_notes(label: str, runs: Sequence[tuple[str, int, float]]) -> list[str]:
    """A note per fold whose finished runs of two or more networks all scored exactly 0.0.

    Args:
        label: The search run, as the note names it.
        runs: (network key, fold, score) of each finished training run.
    """
    by_fold: dict[int, list[tuple[str, float]]] = {}
    for key, fold, score in runs:
        by_fold.setdefault(int(fold), []).append((key, float(score)))
    notes = []
    for fold, scored in sorted(by_fold.items()):
        networks = {k for k, _ in scored}
        if len(networks) < 2 or any(s != 0.0 for _, s in scored):
            continue
        notes.append(f"{label}: fold {fold} scores Dice exactly 0.0 for every network "
                     f"({len(networks)} networks, {len(scored)} runs): {_ZERO_FOLD}; its "
                     "share of every search score is that constant")
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
