"""`mbnas evaluate --front`: retrain every archive member of a cost-aware search.

A search with cost objectives leaves ``RUN_DIR/front.json`` (the archive of Pareto
local search). With ``--front`` each member is a model of the evaluation, trained with
the final protocol like the best network: the best keeps the run's name ("MB-NAS") and
its ``RUN_DIR/model`` export; the others are named "<run name> front k" (k: rank by
search Dice) and exported to ``EVAL_DIR/models/`` only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mbnas.commands.common.runfolder import RunFolder
from mbnas.errors import ConfigError


def front_models(runs: Sequence[Any], best_models: Sequence[Any]) -> list[Any]:
    """The evaluation's searched models with every archive member of each run.

    Args:
        runs: The search runs (:class:`~mbnas.commands.common.search_runs.SearchRun`).
        best_models: Their best networks as ``EvaluatedModel``, one per run, in order.

    Raises:
        ConfigError: a run without a front (a search for Dice alone).
    """
    from mbnas.commands.common.search_runs import EvaluatedModel

    models: list[Any] = []
    for run, best in zip(runs, best_models, strict=True):
        folder = RunFolder(run.folder)
        front = folder.read_front()
        if front is None:
            raise ConfigError(f"{run.folder}: no {folder.front.name}: --front needs a search with "
                              "cost objectives (mbnas search --objectives dice,macs)")
        models.append(best)
        rank = 0
        for member in front["members"]:
            if member["arch_key"] == best.arch_key:
                continue
            rank += 1
            models.append(EvaluatedModel(f"{run.name} front {rank}", member["genotype"],
                                         member["arch_key"], run, front_member=True))
    return models
