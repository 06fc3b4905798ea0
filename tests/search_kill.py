"""Shared by the `mbnas search` tests: the config file, the log, and SIGKILL mid-search.

Imported by name (``from search_kill import ...``): pytest puts ``tests/`` on the path
for its conftest.py.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from mbnas.cli import main
from mbnas.store import ResultStore, StoreError


def write_config(tmp_path: Path, cfg: dict, name: str = "search.yaml") -> Path:
    """``cfg`` written as ``tmp_path/name`` (YAML), the path returned."""
    path = tmp_path / name
    path.write_text(yaml.safe_dump(cfg))
    return path


def search_log(run: Path) -> list[dict]:
    """The search log without wall-clock fields, which differ between runs."""
    lines = [json.loads(x) for x in (run / "search_log.jsonl").read_text().splitlines()]
    for e in lines:
        e.pop("seconds", None)
    return lines


def search_to_end(cfg: Path, out: Path, *flags: str) -> Path:
    """``out`` after `mbnas search --config CFG --out OUT FLAGS` ran to its end here."""
    assert main(["search", "--config", str(cfg), "--out", str(out), *flags]) == 0
    return out


def search_command(cfg: Path, out: Path, *flags: str) -> list[str]:
    """`mbnas search --config CFG --out OUT FLAGS` as a new Python process runs it."""
    return [sys.executable, "-m", "mbnas.cli", "search", "--config", str(cfg), "--out",
            str(out), *flags]


def committed_runs(out: Path) -> int:
    """Runs committed to ``out``'s store by another process; 0 while it is being created."""
    try:
        with ResultStore(out / "store.sqlite", read_only=True) as store:
            return store.count()
    except StoreError:  # not created, or its tables not made yet
        return 0


def sigkill_when(cmd: list[str], ready: Callable[[], bool], timeout: float = 300) -> None:
    """Start ``cmd`` and SIGKILL it as soon as ``ready()`` is true (polled every 20 ms).

    Fails if the process ended on its own first: it was not killed mid-way.
    """
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None and not ready():
        time.sleep(0.02)
    assert proc.poll() is None, "the search ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def kill_after_runs(cfg: Path, out: Path, runs: int, *flags: str) -> dict[tuple, str]:
    """Run the search of ``cfg`` into ``out`` in a new process, SIGKILL it once ``runs``
    runs are committed, and return the committed runs: (arch, protocol, fold, seed) ->
    finished_at, to check that the resumed search trains none of them again."""
    sigkill_when(search_command(cfg, out, *flags), lambda: committed_runs(out) >= runs)
    return finished_runs(out)


def kill_and_resume(cfg: Path, out: Path, runs: int, *flags: str) -> Path:
    """:func:`kill_after_runs`, then the same search resumed to its end in this process;
    fails if it trained again any run committed before the kill. Returns ``out``."""
    before = kill_after_runs(cfg, out, runs, *flags)
    search_to_end(cfg, out, *flags)
    assert_none_trained_again(out, before)
    return out


def finished_runs(out: Path) -> dict[tuple, str]:
    """Each stored run's (arch_key, protocol_key, fold, seed) -> finished_at."""
    with ResultStore(out / "store.sqlite", read_only=True) as store:
        return {(r.arch_key, r.protocol_key, r.fold, r.seed): r.finished_at
                for r in store.runs()}


def assert_none_trained_again(out: Path, before: dict[tuple, str]) -> None:
    """No run committed before the kill (``before``) was trained again by the resume."""
    assert before, "the search was killed before any run was committed"
    after = finished_runs(out)
    assert all(after[key] == finished for key, finished in before.items())
