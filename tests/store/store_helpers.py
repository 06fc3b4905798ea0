"""Records for the store tests, and a writer loop that the crash test kills.

Run as a script (``python store_helpers.py STORE START``) it stores runs START,
START+1, ... for ever, printing each key only after its commit returned.
"""

from __future__ import annotations

import sys
from typing import Any

from mbnas.store import ResultStore, RunRecord


def make_record(i: int, **overrides: Any) -> RunRecord:
    """A deterministic, realistically sized run record numbered ``i``."""
    fields: dict[str, Any] = {
        "arch_key": f"arch{i // 6:03d}",
        "protocol_key": "proto-a" if i % 2 == 0 else "proto-b",
        "fold": i % 3,
        "seed": (i // 3) % 2,
        "status": "finished",
        "score": 0.5 + (i % 97) / 200,
        "curve": [{"epoch": e, "loss": 1.0 / (e + 1 + i), "val_dice": e / 100} for e in range(100)],
        "metrics": {"case_7": {"dice": [0.9, 0.8], "hd95": [1.5, 2.25]}, "index": i},
        "seconds": 12.5 + i,
        "device": "cpu",
        "versions": {"python": "3.11", "torch": "2.14.1", "mbnas": "0.1.0"},
        "architecture": {"nodes": [{"channels": 16 << (n % 3), "block": "vgg"} for n in range(10)]},
        "protocol": {"epochs": 50, "lr": 1e-3, "name": "p" * 200},
        "started_at": "2025-01-02T03:04:05+00:00",
        "finished_at": "2025-01-02T03:10:00+00:00",
    }
    fields.update(overrides)
    return RunRecord(**fields)


def reap(proc: Any) -> None:
    """Make sure a test's subprocess is dead and its pipes are closed."""
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    proc.stdout.close()
    proc.stderr.close()


def key_text(record: RunRecord) -> str:
    return "|".join(str(part) for part in record.key)


def main(path: str, start: int) -> None:
    with ResultStore(path) as store:
        i = start
        while True:
            record = make_record(i)
            store.put(record)
            print(key_text(record), flush=True)
            i += 1


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
