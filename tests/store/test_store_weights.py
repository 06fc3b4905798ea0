"""Weights are saved atomically and loaded without running pickled code."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections import OrderedDict
from pathlib import Path

import pytest
import torch
from torch import nn

from mbnas.store import StoreError, load_weights, save_weights


def small_model(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 2, 1))


class Unpicklable:
    def __reduce__(self):
        raise RuntimeError("crash while writing")


def test_round_trip_restores_the_model(tmp_path: Path) -> None:
    model = small_model(0)
    path = save_weights(model.state_dict(), tmp_path / "w" / "run.pt")
    loaded = load_weights(path)
    assert set(loaded) == set(model.state_dict())
    other = small_model(1)
    other.load_state_dict(loaded)
    x = torch.randn(2, 1, 8, 8)
    model.eval()
    other.eval()
    assert torch.equal(model(x), other(x))
    assert all(t.device.type == "cpu" for t in loaded.values())


def test_crash_midway_leaves_the_old_file_intact(tmp_path: Path) -> None:
    path = tmp_path / "run.pt"
    save_weights(small_model(0).state_dict(), path)
    before = path.read_bytes()
    broken = OrderedDict(small_model(1).state_dict())
    broken["zz_not_a_tensor"] = Unpicklable()  # torch.save fails partway through
    with pytest.raises(RuntimeError, match="crash while writing"):
        save_weights(broken, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["run.pt"]  # no temporary file left
    restored = load_weights(path)
    assert torch.equal(restored["0.weight"], small_model(0).state_dict()["0.weight"])


def test_bad_weights_files_give_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no weights file"):
        load_weights(tmp_path / "missing.pt")
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a torch file at all")
    with pytest.raises(StoreError, match="garbage.pt: not a readable weights file"):
        load_weights(garbage)
    code = tmp_path / "code.pt"
    torch.save({"model": small_model(0)}, code)  # a pickled module, not a state_dict
    with pytest.raises(StoreError, match="code.pt: not a readable weights file"):
        load_weights(code)


def test_write_failing_midway_keeps_the_old_file(tmp_path: Path) -> None:
    # The mechanism save_weights relies on, with a writer that has already written bytes.
    from mbnas.io import atomic_write

    path = tmp_path / "run.pt"
    save_weights({"w": torch.ones(3)}, path)
    before = path.read_bytes()

    def half_then_crash(f) -> None:
        f.write(before[: len(before) // 2])
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(path, half_then_crash)
    assert path.read_bytes() == before


_SAVER = """
import sys, torch
from mbnas.store import save_weights
versions = [{"w": torch.full((2_000_000,), float(v))} for v in (1, 2)]
i = 0
while True:
    save_weights(versions[i % 2], sys.argv[1])
    print(i % 2 + 1, flush=True)
    i += 1
"""


@pytest.mark.skipif(sys.platform == "win32", reason="needs SIGKILL")
@pytest.mark.parametrize("delay", [0.0, 0.013, 0.031])
def test_sigkill_while_saving_leaves_a_whole_file(tmp_path: Path, delay: float,
                                                  helpers) -> None:
    path = tmp_path / "run.pt"
    proc = subprocess.Popen([sys.executable, "-c", _SAVER, str(path)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        saved = [proc.stdout.readline().strip() for _ in range(2)]
        assert saved == ["1", "2"], proc.stderr.read()
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        saved += proc.stdout.read().split()
    finally:
        helpers.reap(proc)
    w = load_weights(path)["w"]
    assert w.shape == (2_000_000,)
    value = w[0].item()
    assert torch.all(w == value)
    assert value in (1.0, 2.0)  # one whole version: the last reported, or the next one
