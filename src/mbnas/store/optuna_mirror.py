"""A read-only mirror of a search in an Optuna storage, for ``optuna-dashboard``.

Every evaluation of ``search_log.jsonl`` becomes one trial of the study ``mbnas`` in
``RUN/optuna.db``: the genotype's variables (``a1``..``d10``, the paper's names) as
categorical parameters, the score as the value (maximised), and the run's key, phase and
acceptance as user attributes. A failed evaluation is a FAIL trial; an evaluation the
search skipped without training (e.g. over a cost limit) is a PRUNED trial with the
reason in its ``status`` attribute.

The mirror is derived: it is rebuilt from the search log (itself rebuilt from the store
and the strategy's state after every evaluation), never read back. When its trials are a
prefix of what the log says, the missing ones are appended; otherwise (an edited or
stale file) it is rebuilt in a temporary file that atomically replaces it. So it can
never disagree with the store for longer than one evaluation.

Optuna is an optional extra (``mbnas[dashboard]``); without it there is no mirror.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

FILENAME = "optuna.db"
STUDY = "mbnas"
log = logging.getLogger("mbnas.optuna")


def optuna_available() -> bool:
    try:
        import optuna  # noqa: F401
    except ImportError:
        return False
    return True


def _variables(genotype: dict[str, Any]) -> dict[str, Any]:
    """The genotype's variables by the paper's names: a1 (channels), b1 (block), ..."""
    from mbnas.spaces.mbnas.genotype import FIELDS

    params: dict[str, Any] = {}
    for i, node in enumerate(genotype.get("nodes", []), start=1):
        for letter, name in FIELDS.items():
            if name in node:
                params[f"{letter}{i}"] = node[name]
    return params


def _choices(entries: Sequence[dict[str, Any]]) -> dict[str, tuple[Any, ...]]:
    """Options per variable: every value any evaluation took, in a stable order."""
    seen: dict[str, set[Any]] = {}
    for entry in entries:
        for name, value in _variables(entry.get("genotype") or {}).items():
            seen.setdefault(name, set()).add(value)
    return {name: tuple(sorted(values, key=str)) for name, values in seen.items()}


def _trials(entries: Sequence[dict[str, Any]]) -> list[Any]:
    import optuna
    from optuna.distributions import CategoricalDistribution
    from optuna.trial import TrialState

    choices = _choices(entries)
    trials = []
    for entry in entries:
        params = _variables(entry.get("genotype") or {})
        score = entry.get("score")
        if "skipped" in entry:  # over a cost limit: never trained (mbnas.strategies.limits)
            entry = {**entry, "reason": entry["skipped"]}
            status = "skipped"
        else:
            status = "finished" if score is not None else "failed"
        if status == "skipped":
            state = TrialState.PRUNED
        elif score is None or (isinstance(score, float) and math.isnan(score)):
            state = TrialState.FAIL
        else:
            state = TrialState.COMPLETE
        attrs = {k: entry.get(k) for k in ("index", "arch_key", "phase", "variable",
                                           "accepted", "runs", "seconds", "reason")
                 if entry.get(k) is not None}
        attrs["status"] = status
        trials.append(optuna.trial.create_trial(
            params=params,
            distributions={n: CategoricalDistribution(choices[n]) for n in params},
            value=float(score) if state == TrialState.COMPLETE and score is not None else None,
            state=state,
            user_attrs=attrs,
        ))
    return trials


def _same(stored: Any, wanted: Any) -> bool:
    return (stored.state == wanted.state and stored.params == wanted.params
            and stored.distributions == wanted.distributions
            and stored.values == wanted.values and stored.user_attrs == wanted.user_attrs)


def _study(path: Path) -> Any:
    import optuna

    storage = optuna.storages.RDBStorage(f"sqlite:///{path}")
    return optuna.create_study(storage=storage, study_name=STUDY, direction="maximize",
                               load_if_exists=True)


def mirror_search_log(folder: Path, entries: Sequence[dict[str, Any]]) -> Path | None:
    """Bring ``folder/optuna.db`` in line with the search log's entries.

    Args:
        folder: The run folder.
        entries: The search log's lines as dicts, in order (``genotype``, ``score``, ...).

    Returns:
        The database's path, or None when Optuna is not installed.
    """
    if not optuna_available():
        return None
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    path = Path(folder) / FILENAME
    wanted = _trials(entries)
    try:
        try:
            return _mirror(path, wanted)
        except Exception as exc:
            if not _damaged(exc):
                raise
            # a mirror damaged by a torn copy or an edit: it is derived, so rebuild it
            log.warning("%s is damaged (%s); rebuilding it from the search log", path,
                        getattr(exc, "orig", None) or exc)
            return _rebuild(path, wanted)
    except Exception as exc:
        from sqlalchemy.exc import SQLAlchemyError

        if not isinstance(exc, SQLAlchemyError):
            raise  # a bug, not the file system
        from mbnas.store.records import StoreError

        reason = getattr(exc, "orig", None) or exc  # sqlite's own words: disk I/O error, ...
        raise StoreError(f"{path}: cannot write the Optuna mirror ({reason}); finished "
                         "evaluations are kept in the result store: free disk space and run "
                         f"the same command again (the mirror is rebuilt from the search "
                         f"log: {path.name} may be deleted)") from exc


def _damaged(exc: BaseException) -> bool:
    """Whether SQLite found the file damaged or not a database (not a full disk, a
    lock or another passing condition)."""
    from sqlalchemy.exc import SQLAlchemyError

    orig = getattr(exc, "orig", None)
    return isinstance(exc, SQLAlchemyError) and getattr(
        orig, "sqlite_errorname", None) in ("SQLITE_CORRUPT", "SQLITE_NOTADB")


def _mirror(path: Path, wanted: Sequence[Any]) -> Path:
    study = _study(path)
    stored = study.get_trials(deepcopy=False)
    prefix = len(stored) <= len(wanted) and all(
        _same(s, w) for s, w in zip(stored, wanted))
    if prefix:
        for trial in wanted[len(stored):]:
            study.add_trial(trial)
        return path
    log.info("rebuilding %s from the search log (%d trials)", path, len(wanted))
    return _rebuild(path, wanted)


def _rebuild(path: Path, wanted: Sequence[Any]) -> Path:
    """Write the mirror afresh in a temporary file that atomically replaces ``path``."""
    tmp = path.with_name(f".{FILENAME}.{os.getpid()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    fresh = _study(tmp)
    fresh.add_trials(wanted)
    del fresh
    os.replace(tmp, path)
    return path
