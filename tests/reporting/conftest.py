"""Fixed, hand-checkable evaluations for the report tests."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import pytest

from mbnas.reporting.report_data import CaseScore, ModelCost, ModelEvaluation

# case_id of each (fold, position): fold 0 validates c1 and c2, fold 1 validates c3.
CASES_OF_FOLD = {0: ("c1", "c2"), 1: ("c3",)}


def _cases(name: str, dice: Mapping[int, Sequence[float]], hd: Mapping[int, float],
           sd: Mapping[int, float]) -> list[CaseScore]:
    """Cases of seeds 0 and 1; ``dice[seed]`` lists c1, c2, c3; hd/sd are per seed."""
    out = []
    for seed, values in dice.items():
        ids = [(f, c) for f in CASES_OF_FOLD for c in CASES_OF_FOLD[f]]
        for (fold, case), d in zip(ids, values, strict=True):
            per_class = {"PZ": {"dice": d + 0.1, "hd95": hd[seed], "surface_dice": sd[seed]},
                         "TZ": {"dice": d - 0.1, "hd95": hd[seed], "surface_dice": sd[seed]}}
            out.append(CaseScore(name, seed, fold, case,
                                 {"dice": d, "hd95": hd[seed], "surface_dice": sd[seed]},
                                 per_class))
    return out


@pytest.fixture
def table_evals() -> list[ModelEvaluation]:
    """Two models x 2 seeds x 2 folds (3 validation cases per seed), numbers chosen by hand.

    MB-NAS: seed 0 Dice (0.8, 0.9, 0.7) -> 0.8; seed 1 (0.6, 0.8, 0.7) -> 0.7;
    HD95 2 mm (seed 0) and 4 mm (seed 1); SD 0.5.
    U-Net: Dice (0.7, 0.8, 0.6) -> 0.7 for both seeds; HD95 5 mm; SD 0.6 / 0.8.
    """
    mb = ModelEvaluation(
        "MB-NAS", "searched", {"kind": "genotype", "nodes": []},
        tuple(_cases("MB-NAS", {0: (0.8, 0.9, 0.7), 1: (0.6, 0.8, 0.7)},
                     {0: 2.0, 1: 4.0}, {0: 0.5, 1: 0.5})),
        cost=ModelCost(params=3_040_000, macs=644e6, macs_input_size=(128, 128), macs_32=40.3e6,
                       latency_ms=3.5, peak_memory_mb=120.0, device="cpu"),
        source_run="runs/mbnas_seed0",
    )
    unet = ModelEvaluation(
        "U-Net", "baseline", {"kind": "baseline", "name": "unet"},
        tuple(_cases("U-Net", {0: (0.7, 0.8, 0.6), 1: (0.7, 0.8, 0.6)},
                     {0: 5.0, 1: 5.0}, {0: 0.6, 1: 0.8})),
        cost=ModelCost(params=18_400_000, macs=302e6, macs_input_size=(128, 128),
                       macs_32=18.9e6),
    )
    return [mb, unet]


@pytest.fixture
def make_runs() -> Callable[..., ModelEvaluation]:
    """Factory: a model with only run-level Dice, from {(seed, fold): dice}."""

    def make(name: str, runs: Mapping[tuple[int, int], float], kind: str = "searched"
             ) -> ModelEvaluation:
        return ModelEvaluation(name, kind, run_scores=dict(runs))

    return make
