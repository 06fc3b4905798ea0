"""A writer killed with SIGKILL loses nothing it reported as stored, and leaves no partial row."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from mbnas.store import ResultStore

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs SIGKILL")


def _run_and_kill(path: Path, start: int, commits: int, delay: float, helpers) -> list[str]:
    """Start the writer loop, let it report ``commits`` runs, wait ``delay`` s, SIGKILL it.

    Returns every key the writer printed, i.e. every run whose commit had returned.
    """
    proc = subprocess.Popen(
        [sys.executable, str(helpers.__file__), str(path), str(start)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    reported: list[str] = []
    try:
        while len(reported) < commits:
            line = proc.stdout.readline()
            if not line:
                pytest.fail(f"writer exited early: {proc.wait()} {proc.stderr.read()}")
            reported.append(line.strip())
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        reported += [line.strip() for line in proc.stdout.read().splitlines() if line.strip()]
    finally:
        helpers.reap(proc)
    assert proc.returncode == -signal.SIGKILL
    return reported


def test_sigkill_at_random_moments_keeps_every_reported_run(tmp_path: Path, helpers) -> None:
    path = tmp_path / "store.sqlite"
    rng = np.random.default_rng(20240611)
    reported: list[str] = []
    for _ in range(5):
        start = len(reported)  # the writer goes on after the last stored run
        commits = int(rng.integers(1, 25))
        delay = float(rng.uniform(0.0, 0.03))
        reported += _run_and_kill(path, start, commits, delay, helpers)

        conn = sqlite3.connect(path)  # the file itself is sound
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        conn.close()
        with ResultStore(path) as store:  # it opens for writing again: the lock is gone
            runs = store.runs()
        # Every row is a whole record, rows are runs 0..n-1 in order (nothing lost
        # in between), and every reported run is there. At most one more run may be
        # stored than reported: the one committed just before the print.
        assert runs == [helpers.make_record(i) for i in range(len(runs))]
        assert [helpers.key_text(r) for r in runs[: len(reported)]] == reported
        assert len(reported) <= len(runs) <= len(reported) + 1
        reported = [helpers.key_text(r) for r in runs]
    assert len(reported) >= 5

