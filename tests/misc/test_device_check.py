"""`benchmarks/device_check.sh --device cpu`: the GPU machine's one command, CI-sized."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_device_check_runs_every_step_and_ends_with_the_figures(tmp_path: Path) -> None:
    out = tmp_path / "check.txt"
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    done = subprocess.run(["bash", str(ROOT / "benchmarks" / "device_check.sh"), "--device",
                           "cpu", "--python", sys.executable, "--out", str(out)],
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    text = out.read_text()
    exits = re.findall(r"^== (.+): exit (\d+) after", text, flags=re.M)
    assert [name for name, _ in exits] == ["CUDA tests", "search cost", "train throughput",
                                           "paper evaluation"]
    assert all(rc == "0" for _, rc in exits), text[-3000:]
    figures = text.split("== figures\n", 1)[1].splitlines()
    assert figures[0].startswith("images/s: U-Net preset ")
    assert figures[1].startswith("FLOP/s fraction: ")
    assert "one paper-protocol evaluation of the U-Net preset" in figures[2]
    assert any("estimated GPU-hours of a Spleen paper search" in f and "--fidelity" in f
               for f in figures)
    assert "not measured" not in "\n".join(figures)
    assert not list(tmp_path.glob("device-check-*"))  # its work folder is removed


def test_device_check_refuses_an_unknown_device(tmp_path: Path) -> None:
    done = subprocess.run(["bash", str(ROOT / "benchmarks" / "device_check.sh"), "--device",
                           "tpu", "--python", sys.executable], capture_output=True, text=True,
                          cwd=tmp_path)
    assert done.returncode == 2 and done.stderr.startswith("error: --device must be")


def test_without_out_it_writes_into_a_temporary_folder_it_names(tmp_path: Path) -> None:
    # `false` as the interpreter: every step fails at once, and where the file goes shows.
    cwd, tmp = tmp_path / "checkout", tmp_path / "tmp"
    cwd.mkdir()
    tmp.mkdir()
    done = subprocess.run(["bash", str(ROOT / "benchmarks" / "device_check.sh"), "--device",
                           "cpu", "--python", "false"], cwd=cwd,
                          env={**os.environ, "TMPDIR": str(tmp)}, capture_output=True,
                          text=True, timeout=120)
    assert list(cwd.iterdir()) == []
    named = re.search(r"device check written to (\S+)", done.stderr)
    assert named, done.stderr
    out = Path(named[1])
    assert out.parent.parent == tmp and "== CUDA tests: exit 1" in out.read_text()
