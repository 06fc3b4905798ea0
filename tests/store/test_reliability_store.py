"""Store schema 2 (failure kind, weights checksum, dataset fingerprint), older stores, and
damaged stores named as such (issue 11)."""

from __future__ import annotations

import sqlite3

import pytest
import torch

from mbnas.store import ResultStore, StoreError, file_sha256, load_weights, save_weights


def _downgrade_to_schema_1(path) -> None:
    conn = sqlite3.connect(path)
    for column in ("failure", "weights_sha256", "data_fingerprint"):
        conn.execute(f"ALTER TABLE runs DROP COLUMN {column}")
    conn.execute("UPDATE mbnas_meta SET value = '1' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()


def test_schema_1_store_is_read_and_upgraded(tmp_path, helpers) -> None:
    make_record = helpers.make_record
    path = tmp_path / "store.sqlite"
    with ResultStore(path) as store:
        store.put(make_record(0))
    _downgrade_to_schema_1(path)
    with ResultStore(path, read_only=True) as store:
        (old,) = store.runs()
        assert old.failure is None and old.weights_sha256 is None
    with ResultStore(path) as store:  # the writer upgrades it
        store.put(make_record(1, status="failed", score=None, error="Traceback\nMemoryError",
                              failure="environment", data_fingerprint="abc"))
        assert store.get(*make_record(1).key).failure == "environment"
    assert sqlite3.connect(path).execute(
        "SELECT value FROM mbnas_meta WHERE key = 'schema_version'").fetchone()[0] == "2"


def test_truncated_store_is_called_damaged(tmp_path, helpers) -> None:
    make_record = helpers.make_record
    path = tmp_path / "store.sqlite"
    with ResultStore(path) as store:
        for i in range(30):
            store.put(make_record(i))
    blob = path.read_bytes()
    (tmp_path / "store.sqlite-wal").unlink(missing_ok=True)
    path.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(StoreError, match="damaged result store"), ResultStore(path) as store:
        store.runs()


def test_weights_checksum_refuses_a_flipped_byte(tmp_path) -> None:
    path = save_weights({"w": torch.arange(1000, dtype=torch.float32)}, tmp_path / "w.pt")
    digest = file_sha256(path)
    assert load_weights(path, digest)["w"].shape == (1000,)
    blob = bytearray(path.read_bytes())
    flips = 0
    for offset in range(0, len(blob), max(1, len(blob) // 40))[:40]:
        damaged = bytearray(blob)
        damaged[offset] ^= 0x01
        path.write_bytes(bytes(damaged))
        with pytest.raises(StoreError):
            load_weights(path, digest)
        flips += 1
    assert flips == 40
