"""Failed runs: environment failures are retried on resume, network failures stay recorded,
``--retry-failed`` retrains them, a search whose runs all failed exits non-zero, and a
retried run gives the score it would have given the first time (issue 11, item 2)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
import torch

import mbnas.training.runs as runs_module
from mbnas.cli import main
from mbnas.commands.search.run import SearchConfig, run_search
from mbnas.store import ResultStore
from mbnas.training.failures import RunFailure, failure_kind


def _config(data: Path, cache: Path, tiny_protocol, budget: int = 2) -> SearchConfig:
    return SearchConfig(data_dir=str(data), budget=budget, seed=5, cache_dir=str(cache),
                        protocol=tiny_protocol, device="cpu", threads=1)


def _scores(run: Path) -> list:
    return [json.loads(x)["score"] for x in (run / "search_log.jsonl").read_text().splitlines()]


def _failing(monkeypatch: pytest.MonkeyPatch, exc: BaseException, times: int) -> list[int]:
    """Make the first ``times`` trainings raise ``exc`` (then train for real)."""
    real, calls = runs_module.train_run, [0]

    def train_run(*args, **kwargs):
        calls[0] += 1
        if calls[0] <= times:
            raise exc
        return real(*args, **kwargs)

    monkeypatch.setattr(runs_module, "train_run", train_run)
    return calls


@pytest.fixture(scope="module")
def clean_search(tmp_path_factory, phantom_spleen: Path, phantom_cache: Path,
                 tiny_protocol) -> Path:
    out = tmp_path_factory.mktemp("clean") / "run"
    run_search(_config(phantom_spleen, phantom_cache, tiny_protocol), out)
    return out


def test_failure_kinds() -> None:
    import errno

    assert failure_kind(MemoryError()) == "environment"
    assert failure_kind(OSError(errno.ENOSPC, "No space left on device")) == "environment"
    assert failure_kind(AssertionError("Torch not compiled with CUDA enabled")) == "environment"
    assert failure_kind(RuntimeError("mat1 and mat2 shapes cannot be multiplied")) == "network"


def test_environment_failure_is_retried_on_resume_with_the_same_score(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, phantom_spleen: Path,
        phantom_cache: Path, tiny_protocol, clean_search: Path) -> None:
    config = _config(phantom_spleen, phantom_cache, tiny_protocol)
    out = tmp_path / "run"
    _failing(monkeypatch, MemoryError(), times=1)
    with pytest.raises(RunFailure, match="because of the machine.*ran out of memory"):
        run_search(config, out)
    with ResultStore(out / "store.sqlite", read_only=True) as store:
        failed = store.runs(status="failed")
        assert [r.failure for r in failed] == ["environment"]
    assert not (out / "best.json").exists()  # the strategy was told nothing
    monkeypatch.undo()
    run_search(config, out)  # a plain resume retries it
    assert _scores(out) == _scores(clean_search)
    with ResultStore(out / "store.sqlite", read_only=True) as store:
        assert store.count("failed") == 0


def test_network_failure_stays_until_retry_failed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, phantom_spleen: Path,
        phantom_cache: Path, tiny_protocol, clean_search: Path) -> None:
    config = _config(phantom_spleen, phantom_cache, tiny_protocol)
    out = tmp_path / "run"
    _failing(monkeypatch, RuntimeError("an error raised in the model"), times=1)
    with pytest.warns(RuntimeWarning, match="an error raised in the model"):
        run_search(config, out)
    assert _scores(out)[0] is None
    monkeypatch.undo()
    calls = _failing(monkeypatch, RuntimeError("unused"), times=0)
    run_search(config, out)  # a resume keeps the network's failure
    assert calls[0] == 0 and _scores(out)[0] is None
    run_search(config, out, retry_failed=True)
    assert calls[0] >= 1  # the failed run trained again
    assert _scores(out) == _scores(clean_search)


def test_all_runs_failed_exits_non_zero_without_a_best_path(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture,
        phantom_spleen: Path, phantom_cache: Path) -> None:
    _failing(monkeypatch, RuntimeError("every network breaks"), times=10**6)
    out = tmp_path / "run"
    with pytest.warns(RuntimeWarning):
        code = main(["search", str(phantom_spleen), "--protocol", "quick", "--budget", "1",
                     "--epochs", "2", "--folds", "2", "--image-size", "32", "--threads", "1",
                     "--cache", str(phantom_cache), "--device", "cpu", "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 1
    assert "every run of this search failed" in captured.err
    assert "every network breaks" in captured.err
    assert "best architecture" not in captured.out and not (out / "best.json").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_unavailable_device_is_refused_before_the_folder_is_written(
        tmp_path: Path, capsys: pytest.CaptureFixture, phantom_spleen: Path,
        phantom_cache: Path) -> None:
    out = tmp_path / "run"
    code = main(["search", str(phantom_spleen), "--protocol", "quick", "--budget", "1",
                 "--cache", str(phantom_cache), "--device", "cuda", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and "no CUDA device" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


class _BrokenHook:
    """A user's progress hook with a bug: it raises at the first epoch of the third run."""

    def __init__(self) -> None:
        self.runs = 0

    def run_started(self, spec) -> None:
        self.runs += 1

    def epoch_done(self, spec, stats) -> None:
        if self.runs == 3:
            raise ZeroDivisionError("my notebook's progress bar")


def test_an_exception_in_a_progress_hook_stops_the_command_and_records_no_failure(
        tmp_path: Path, phantom_spleen: Path, phantom_cache: Path) -> None:
    """Issue 34 item 7: a hook's bug is not a failed network (no other search path, no
    failure left in the store for later resumes)."""
    import mbnas
    from mbnas.errors import HookError

    out = tmp_path / "run"
    tiny = {"epochs": 1, "folds": 2, "seeds": [0], "image_size": 32, "base_channels": 4}
    with warnings.catch_warnings(record=True) as warned, pytest.raises(HookError) as info:
        warnings.simplefilter("always")
        mbnas.search(phantom_spleen, out, protocol="quick", budget=3, start="unet",
                     threads=1, cache_dir=str(phantom_cache), protocol_overrides=tiny,
                     hooks=_BrokenHook())
    assert "_BrokenHook.epoch_done" in str(info.value)
    assert "ZeroDivisionError: my notebook's progress bar" in str(info.value)
    assert isinstance(info.value.__cause__, ZeroDivisionError)
    assert not [w for w in warned if "failed" in str(w.message)]
    with ResultStore(out / "store.sqlite", read_only=True) as store:
        records = store.runs()
    assert len(records) == 2 and {r.status for r in records} == {"finished"}
    # the same call, with a working hook, resumes: the two runs come from the store
    done = mbnas.search(phantom_spleen, out, protocol="quick", budget=3, start="unet",
                        threads=1, cache_dir=str(phantom_cache), protocol_overrides=tiny)
    assert done is not None
