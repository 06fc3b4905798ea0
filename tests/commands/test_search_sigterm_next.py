"""`mbnas search` ends with a `next:` command, and SIGTERM (a scheduler's time limit) leaves
a line in the run's log and the exit code of a terminated process (issue 35)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

TINY = ["--protocol", "quick", "--epochs", "1", "--folds", "2", "--image-size", "32",
        "--start", "unet", "--threads", "1", "--device", "cpu"]


def _search(phantom_spleen: Path, cache: Path, out: Path, budget: int) -> list[str]:
    return [sys.executable, "-m", "mbnas.cli", "search", str(phantom_spleen), *TINY,
            "--budget", str(budget), "--cache", str(cache), "--out", str(out)]


def test_search_prints_next_and_sigterm_is_logged(phantom_spleen: Path, phantom_cache: Path,
                                                  tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    out = tmp_path / "run"
    done = subprocess.run(_search(phantom_spleen, phantom_cache, out, 1), env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert f"next: mbnas evaluate {out}" in done.stdout
    # extend the search, then terminate it once it has started
    proc = subprocess.Popen(_search(phantom_spleen, phantom_cache, out, 6), env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    log = out / "search.log"
    deadline = time.monotonic() + 600
    while "resuming search" not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert proc.poll() is None, "the extended search ended before it could be terminated"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "terminated (SIGTERM)" in err and "Traceback" not in err
    assert "received SIGTERM" in log.read_text()
