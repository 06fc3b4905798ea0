"""RunRecord validation and normalisation."""

from __future__ import annotations

import numpy as np
import pytest

from mbnas.errors import MbnasError
from mbnas.store import RunRecord, StoreError, runtime_versions, utc_now


def test_record_key_and_dict(helpers) -> None:
    r = helpers.make_record(7)
    assert r.key == ("arch001", "proto-b", 1, 0)
    d = r.to_dict()
    assert d["arch_key"] == "arch001" and d["curve"] == r.curve
    assert RunRecord(**d) == r


def test_json_fields_are_normalised_copies(helpers) -> None:
    metrics = {"dice": np.float32(0.5), "per_case": np.array([0.25, 0.75]), "n": np.int64(3)}
    r = helpers.make_record(0, metrics=metrics, curve=(0.1, 0.2), fold=np.int64(2))
    assert r.metrics == {"dice": 0.5, "per_case": [0.25, 0.75], "n": 3}
    assert type(r.metrics["dice"]) is float and type(r.fold) is int
    assert r.curve == [0.1, 0.2]
    metrics["dice"] = 0.0  # the caller's dict is not the record's
    assert r.metrics["dice"] == 0.5


def test_failed_run_needs_error_but_no_score(helpers) -> None:
    r = helpers.make_record(1, status="failed", score=None, error="Traceback ...\nBoom")
    assert r.score is None and r.status == "failed"


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"status": "running"}, "status must be one of"),
        ({"score": None}, "finished run needs a finite score"),
        ({"score": float("nan")}, "score must be finite"),
        ({"status": "failed", "score": None}, "needs its error text"),
        ({"fold": -1}, "fold must be >= 0"),
        ({"seed": True}, "seed must be an integer"),
        ({"seed": 1.5}, "seed must be an integer"),
        ({"arch_key": ""}, "arch_key must be a non-empty string"),
        ({"seconds": -3.0}, "seconds must be >= 0"),
        ({"started_at": "2025-01-02 03:04:05"}, "must be in UTC"),
        ({"finished_at": "yesterday"}, "ISO 8601"),
        ({"metrics": {"model": object()}}, "metrics is not JSON serialisable"),
        ({"curve": {"epoch": 1}}, "curve must be a list"),
        ({"architecture": [1, 2]}, "architecture must be a dict"),
        ({"weights_path": 3}, "weights_path must be a string"),
    ],
)
def test_invalid_records_are_refused(helpers, overrides: dict, match: str) -> None:
    with pytest.raises(StoreError, match=match) as info:
        helpers.make_record(0, **overrides)
    assert isinstance(info.value, MbnasError)


def test_runtime_versions_and_utc_now() -> None:
    versions = runtime_versions()
    assert {"python", "torch", "mbnas", "monai"} <= set(versions)
    assert utc_now().endswith("+00:00")
