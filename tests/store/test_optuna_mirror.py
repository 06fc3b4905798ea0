"""The Optuna mirror (``optuna.db``) is derived from the search log: a damaged one is
rebuilt, never a reason for every rerun to fail (issue 34 item 15)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from mbnas.spaces.mbnas import preset
from mbnas.store.optuna_mirror import FILENAME, mirror_search_log

pytest.importorskip("optuna")


def _entries() -> list[dict]:
    """Search-log lines (``search_log.jsonl``) of three evaluations of preset networks."""
    return [{"index": i, "arch_key": preset(name).key, "genotype": preset(name).to_dict(),
             "score": score, "accepted": i == 0, "phase": "start" if i == 0 else "local"}
            for i, (name, score) in enumerate((("unet", 0.5), ("unet-authors", 0.25),
                                               ("unet", 0.75)))]


def _trials(path: Path) -> list:
    import optuna

    return optuna.load_study(study_name="mbnas", storage=f"sqlite:///{path}").get_trials()


def _damaged_sqlite(path: Path) -> None:
    """An SQLite file whose pages after the header were overwritten (a torn copy)."""
    blob = bytearray(path.read_bytes())
    blob[100:] = b"\xff" * (len(blob) - 100)
    path.write_bytes(bytes(blob))


@pytest.mark.parametrize("damage", ["garbage", "torn"])
def test_a_damaged_mirror_is_rebuilt_from_the_search_log(tmp_path: Path, damage: str) -> None:
    path = tmp_path / FILENAME
    entries = _entries()
    mirror_search_log(tmp_path, entries[:2])
    if damage == "garbage":
        path.write_bytes(b"this is not an SQLite database\n" * 100)
    else:
        _damaged_sqlite(path)
    conn = sqlite3.connect(path)
    try:
        with pytest.raises(sqlite3.DatabaseError):  # really damaged, as SQLite sees it
            conn.execute("SELECT * FROM sqlite_master").fetchall()
    finally:
        conn.close()
    notes = tmp_path / "NOTES.txt"
    notes.write_text("mine")
    assert mirror_search_log(tmp_path, entries) == path
    assert [t.value for t in _trials(path)] == [e["score"] for e in entries]
    assert notes.read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([FILENAME, "NOTES.txt"])
    mirror_search_log(tmp_path, entries)  # and the next evaluation works on it as usual
    assert len(_trials(path)) == len(entries)
