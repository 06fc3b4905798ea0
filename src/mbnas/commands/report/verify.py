"""The report's checks that an evaluation folder tells one story before it is shown.

``evaluation.json`` is a summary: its figures are derived from the folder's result store
(``store.sqlite``: every training run, its per-case metrics and its weights' checksum)
and from ``original_grid.json`` (the per-case metrics on the scans' grids). A report
that showed the summary alone would show a hand edit (a Dice of 0.95 beside a note that
every run predicted one class) as a result. So before anything is drawn:

* ``config.yaml`` must be the readable config of this evaluation (its protocol is the
  one ``evaluation.json`` was measured with);
* the store must be a readable result store;
* each model's architecture must hash to its recorded key, and every case score must
  be what that key's runs in the store (and ``original_grid.json``) give.

A mismatch is refused in one line naming the file, the model, the run and the figure.
:func:`stale_notes` then says when a search run's best network has changed since the
evaluation (a search extended afterwards): the report labels the evaluation as stale;
:func:`search_zero_fold_notes` when a fold of a search scored 0.0 for every network.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mbnas.commands.common.evaluation_file import EvaluationFile
from mbnas.commands.common.runfolder import EvaluationFolder
from mbnas.commands.common.search_runs import EvaluatedModel, SearchRun
from mbnas.errors import ConfigError, MbnasError
from mbnas.reporting.report_data import CaseScore, ModelEvaluation

_AGAIN = "run `mbnas evaluate` on the same folder again to rewrite it"


def verify_evaluation(eval_dir: Path, record: EvaluationFile) -> None:
    """Refuse an evaluation folder whose files disagree (see the module docstring).

    Raises:
        ConfigError: naming the file at fault and the first disagreement.
        StoreError: for a store that is not a readable result store.
    """
    from mbnas.store import ResultStore

    folder = EvaluationFolder(eval_dir)
    _check_config(folder, record)
    if not folder.store.is_file():
        raise ConfigError(f"{folder.path}: no {folder.store.name}: the evaluation's runs are "
                          f"missing, so {folder.evaluation.name} cannot be checked; {_AGAIN}")
    from mbnas.commands.evaluate.original_grid import read_original_grid

    original = read_original_grid(folder.original_grid, record.protocol_key)
    with ResultStore(folder.store, read_only=True) as store:
        for i, model in enumerate(record.models):
            _check_model(folder, record, i, model, store, original)


def _check_config(folder: EvaluationFolder, record: EvaluationFile) -> None:
    from mbnas.training.protocol import Protocol

    config = folder.read_config()  # a garbage file: one line naming it
    if not config:
        raise ConfigError(f"{folder.path}: no {folder.config.name}: not a complete folder of "
                          f"`mbnas evaluate`; {_AGAIN}")
    try:
        key = Protocol.from_dict(config["protocol"]).key
    except (MbnasError, KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ConfigError(f"{folder.config}: not the config of an evaluation (its protocol "
                          f"is not readable: {exc}); {_AGAIN}") from None
    if key != record.protocol_key:
        raise ConfigError(f"{folder.config}: its protocol ({key}) is not the one "
                          f"{folder.evaluation.name} was measured with "
                          f"({record.protocol_key}); {_AGAIN}")


def _check_model(folder: EvaluationFolder, record: EvaluationFile, i: int,
                 model: ModelEvaluation, store: Any, original: Mapping[str, Any]) -> None:
    from mbnas.commands.evaluate.results import model_evaluation
    from mbnas.scoring.train import EvaluationResult
    from mbnas.spaces.mbnas import architecture_from_dict

    where = f"{folder.evaluation}: model {model.name!r}"
    details = record.details.get(model.name)
    if details is None:
        raise ConfigError(f"{where} has no entry in 'details'; {_AGAIN}")
    if model.architecture:
        key = architecture_from_dict(dict(model.architecture)).key
        if key != details.arch_key:
            raise ConfigError(f"{where}: its architecture hashes to {key}, not to the "
                              f"recorded {details.arch_key}; {_AGAIN}")
    protocol = record.protocol
    folds = max(protocol.folds, len(record.folds))  # leave-site-out: one per site
    runs = tuple(r for fold in range(folds) for seed in protocol.seeds
                 if (r := store.get(details.arch_key, record.protocol_key, fold, seed))
                 is not None)
    rebuilt = model_evaluation(
        EvaluatedModel(model.name, dict(model.architecture), details.arch_key),
        EvaluationResult(dict(model.architecture), details.arch_key, runs, 0),
        record.label_names, original=dict(original))
    for what, shown, stored in (("case", model.cases, rebuilt.cases),
                                ("per-slice case", model.paper_cases, rebuilt.paper_cases)):
        problem = _difference(shown, stored)
        if problem is not None:
            raise ConfigError(f"{where}: {what} {problem} in {folder.store.name}; the file was "
                              f"edited or belongs to other runs: {_AGAIN}")


def _difference(shown: Sequence[CaseScore], stored: Sequence[CaseScore]) -> str | None:
    """The first figure of ``shown`` that ``stored`` does not back, in words (or None)."""
    by_run = {(c.seed, c.fold, c.case_id): c for c in stored}
    for c in shown:
        ident = f"{c.case_id} (fold {c.fold} seed {c.seed})"
        truth = by_run.pop((c.seed, c.fold, c.case_id), None)
        if truth is None:
            return f"{ident} has no finished run"
        for name, value in c.values.items():
            if not _same(value, truth.values.get(name)):
                return (f"{ident}: {name} {_fmt(value)} is not its run's "
                        f"{_fmt(truth.values.get(name))}")
        for cls, values in c.per_class.items():
            for name, value in values.items():
                if not _same(value, (truth.per_class.get(cls) or {}).get(name)):
                    return f"{ident}: {cls} {name} {_fmt(value)} is not its run's"
    if by_run:
        seed, fold, case_id = next(iter(by_run))
        return f"{case_id} (fold {fold} seed {seed}) is left out though its run finished"
    return None


def _same(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is b
    a, b = float(a), float(b)
    return (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=1e-9,
                                                             abs_tol=1e-12)


def _fmt(value: Any) -> str:
    return "missing" if value is None else f"{float(value):.4g}"


def stale_notes(record: EvaluationFile, runs: Sequence[SearchRun]) -> list[str]:
    """A note for each search run whose best network is not among the networks the
    evaluation retrained from it (the search was extended after the evaluation)."""
    notes = []
    for run in runs:
        evaluated = {d.arch_key: d.search for d in record.details.values()
                     if d.search is not None and Path(str(d.search.get("run_dir"))) == run.folder}
        if not evaluated:
            continue
        current = run.best.get("arch_key")
        if current is None:
            from mbnas.spaces.mbnas import architecture_from_dict

            current = architecture_from_dict(run.genotype).key
        if current in evaluated:
            continue
        then = next(iter(evaluated.values()))
        when = (f" after {then['evaluations']} of its {len(run.files.read_search_log())} "
                "evaluations" if then.get("evaluations") is not None else "")
        notes.append(
            f"STALE EVALUATION: the best network of {run.label} is now {current} (search "
            f"score {_fmt(run.best.get('score'))}), but the evaluation retrained "
            f"{', '.join(evaluated)} (search score {_fmt(then.get('search_score'))}), its best "
            f"when evaluated{when}; Table 1, the statistics and the box plots are of that "
            f"network, the architecture drawing is of the new one: run `mbnas evaluate` "
            f"again to evaluate the current best")
    return notes


def search_zero_fold_notes(runs: Sequence[SearchRun]) -> list[str]:
    """Notes for search folds scoring exactly 0.0 for every network (from each search's
    store: the search log keeps only the mean over folds)."""
    from mbnas.reporting.suspect import zero_fold_notes
    from mbnas.store import ResultStore

    notes = []
    for run in runs:
        if not run.files.store.is_file():
            continue
        with ResultStore(run.files.store, read_only=True) as store:
            records = store.runs(protocol_key=run.protocol.key, status="finished")
        notes += zero_fold_notes(f"search {run.label}", [
            (r.arch_key, r.fold, r.score) for r in records if r.score is not None])
    return notes
