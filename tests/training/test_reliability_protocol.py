"""Settings that would make every run fail or diverge are refused, naming the field; a run
whose loss becomes non-finite is a failed run with that reason (issue 11, item 9)."""

from __future__ import annotations

import pytest

from mbnas.commands.search.run import SearchConfig
from mbnas.errors import ConfigError
from mbnas.spaces.mbnas import preset
from mbnas.training.protocol import get_protocol
from mbnas.training.runs import RunContext, RunSpec, execute_run


@pytest.mark.parametrize(("overrides", "field"), [
    ({"lr": -1.0}, "protocol.lr"),
    ({"lr": float("nan")}, "protocol.lr"),
    ({"lr": float("inf")}, "protocol.lr"),
    ({"val_batch_size": 0}, "protocol.val_batch_size"),
    ({"weight_decay": -0.1}, "protocol.weight_decay"),
    ({"epochs": "3"}, "protocol.epochs"),
    ({"seeds": [-1]}, "protocol.seeds"),
    ({"augment": {"flip_p": 1.5}}, "augmentation: flip_p"),
    ({"augment": {"scale_p": -0.1}}, "augmentation: scale_p"),
    ({"augment": {"scale": [-1.0, 0.5]}}, "augmentation: scale"),
    ({"augment": {"brightness": [1.2, 0.8]}}, "augmentation: brightness"),
])
def test_protocol_fields_are_validated(overrides, field) -> None:
    with pytest.raises(ConfigError, match=f"invalid {field.replace('.', '[.]')}"):
        get_protocol("quick", **overrides)


@pytest.mark.parametrize(("settings", "field"), [
    ({"budget": "3"}, "search.budget"), ({"seed": -1}, "search.seed"),
    ({"threads": 0}, "search.threads"), ({"max_depth": 1.5}, "search.max_depth"),
])
def test_search_fields_are_validated(settings, field) -> None:
    with pytest.raises(ConfigError, match=f"invalid {field.replace('.', '[.]')}"):
        SearchConfig(data_dir="x", **settings)


def test_diverging_run_is_failed_with_its_reason(phantom_slices, tiny_protocol) -> None:
    protocol = get_protocol("quick", **{**tiny_protocol.to_dict(), "lr": 1e30,
                                        "precision": "fp32"})
    unet = preset("unet")
    ctx = RunContext(phantom_slices, ((phantom_slices.case_ids[0],),
                                      (phantom_slices.case_ids[1],)), "cpu")
    record = execute_run(RunSpec(unet.to_dict(), unet.key, 0, 0, protocol), ctx)
    assert record.status == "failed" and record.failure == "network"
    assert "non-finite" in record.error
