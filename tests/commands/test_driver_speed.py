"""Say what runs where, refuse the paper protocol on a CPU, --estimate, and --race."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from mbnas.cli import main
from mbnas.data.slices import SliceData
from mbnas.scoring.race import optimistic_score, race_many
from mbnas.scoring.train import Evaluator
from mbnas.spaces.mbnas import preset
from mbnas.store import ResultStore
from mbnas.training.device import describe_device, is_paper_scale
from mbnas.training.protocol import Protocol, get_protocol
from mbnas.training.runs import RunContext


def test_paper_scale_protocols() -> None:
    assert is_paper_scale(get_protocol("paper"))
    assert is_paper_scale(get_protocol("paper", folds=3, batch_size=2))
    assert not is_paper_scale(get_protocol("quick"))
    assert not is_paper_scale(get_protocol("paper", image_size=32))
    line = describe_device("cpu", get_protocol("paper", precision="fp32"), threads=1)
    assert line.startswith("device: CPU ") and "fp32" in line and "1 CPU thread" in line


def test_search_estimate_prints_and_writes_nothing(phantom_spleen: Path, phantom_cache: Path,
                                                   tmp_path: Path, capsys) -> None:
    out = tmp_path / "run"
    code = main(["search", str(phantom_spleen), "--out", str(out), "--estimate",
                 "--protocol", "quick", "--image-size", "32", "--budget", "10",
                 "--cache", str(phantom_cache), "--device", "cpu", "--threads", "1"])
    text = capsys.readouterr().out
    assert code == 0 and not out.exists()
    assert "images/s training" in text and "per evaluation" in text
    assert "search: 10 evaluation(s)" in text
    assert text.count("per run") == 3  # the start network and two random ones


def test_paper_protocol_on_cpu_is_refused_with_an_estimate(phantom_spleen: Path,
                                                           phantom_cache: Path,
                                                           tmp_path: Path, capsys) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present: nothing to refuse")
    out = tmp_path / "run"
    code = main(["search", str(phantom_spleen), "--out", str(out), "--batch-size", "2",
                 "--cache", str(phantom_cache), "--threads", "1"])
    err = capsys.readouterr().err
    assert code == 2 and not out.exists()
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert "estimated" in err and "--device cpu" in err and len(errors) == 1


def _folds(data: SliceData) -> tuple[tuple[str, ...], ...]:
    ids = data.case_ids
    return (ids[::2], ids[1::2])


def test_race_discards_a_candidate_that_cannot_win(phantom_slices: SliceData,
                                                   tiny_protocol: Protocol,
                                                   tmp_path: Path) -> None:
    protocol = dataclasses.replace(tiny_protocol, epochs=1)
    ctx = RunContext(phantom_slices, _folds(phantom_slices), "cpu")
    arch = preset("unet")
    with ResultStore(tmp_path / "store.sqlite") as store:
        evaluator = Evaluator(ctx, protocol, store)
        [hopeless] = race_many(evaluator, [arch], to_beat=1.0)  # no Dice beats 1
        assert len(hopeless.runs) == 1 and hopeless.n_trained == 1
        [full] = race_many(evaluator, [arch], to_beat=None)  # nothing to beat yet
        assert len(full.runs) == 2 and full.n_trained == 1  # fold 0 came from the store
        assert full.runs[0] == hopeless.runs[0]
    assert optimistic_score([0.5, 0.7], 4) == pytest.approx((1.2 + 1.4) / 4)


def test_raced_search_logs_discarded_candidates(phantom_spleen: Path, phantom_cache: Path,
                                                tmp_path: Path, capsys) -> None:
    out = tmp_path / "run"
    code = main(["search", str(phantom_spleen), "--out", str(out), "--race", "--protocol",
                 "quick", "--image-size", "32", "--epochs", "1", "--folds", "2",
                 "--budget", "4", "--seed", "3", "--cache", str(phantom_cache),
                 "--threads", "1"])
    assert code == 0
    assert capsys.readouterr().out.startswith("device: ")
    log = [json.loads(x) for x in (out / "search_log.jsonl").read_text().splitlines()]
    assert len(log) == 4
    for entry in log:
        if entry["runs"] < 2:
            assert entry["raced"] == f"discarded after {entry['runs']} of 2 runs"
        else:
            assert "raced" not in entry


def test_estimate_counts_slices_from_the_headers_without_preprocessing(
        phantom_spleen: Path, phantom_slices: SliceData, tmp_path: Path, capsys,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 35 item 7: with no preprocessing cache, --estimate (and so the CPU refusal
    of the paper protocol, which times the same way) reads the scans' headers for the
    slice count instead of preprocessing every case (minutes and gigabytes at the
    paper's size)."""
    monkeypatch.setenv("MBNAS_PROGRESS_SECONDS", "0")  # every progress step printed
    empty = tmp_path / "cache"
    code = main(["search", str(phantom_spleen), "--out", str(tmp_path / "run"), "--estimate",
                 "--protocol", "quick", "--image-size", "32", "--budget", "2",
                 "--cache", str(empty), "--device", "cpu", "--threads", "1"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "preprocessing" not in captured.out + captured.err
    assert f"estimate on cpu: {len(phantom_slices.images)} slices at 32x32" in captured.out
    assert not empty.exists() or not any(empty.iterdir())
