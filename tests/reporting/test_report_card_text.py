"""The card says what the evaluation's own config says: split, counts, devices, costs."""

from __future__ import annotations

from mbnas.commands.report.card import SPLIT_TEXT, folds_text, plural, versions_for
from mbnas.reporting.card import cost_summary
from mbnas.reporting.report_data import ModelCost, ModelEvaluation


def test_folds_follow_the_configs_split() -> None:
    for split, text in SPLIT_TEXT.items():
        assert folds_text(3, split) == f"3-fold {text}"
    assert "leave-site-out" in folds_text(3, "site")
    assert folds_text(5, None) == f"5-fold {SPLIT_TEXT['case']}"  # older configs: case


def test_counts_agree_in_number() -> None:
    assert (plural(1, "evaluation"), plural(2, "evaluation")) == ("1 evaluation",
                                                                  "2 evaluations")


def test_cuda_build_is_marked_unused_on_a_cpu_run() -> None:
    recorded = {"torch": "2.14.1", "cuda": "13.0"}
    cpu = versions_for(recorded, ["cpu"])
    assert "cuda" not in cpu and "13.0" in cpu.values() and "not used" in " ".join(cpu)
    assert versions_for(recorded, ["cuda:0"]) == recorded


def test_macs_at_32_are_not_repeated_when_the_training_size_is_32() -> None:
    e = ModelEvaluation("A", "searched", cost=ModelCost(params=1e6, macs=15.6e6,
                                                        macs_input_size=(32, 32),
                                                        macs_32=15.6e6))
    assert cost_summary([e])["A"].count("MMAC at 32x32") == 1
