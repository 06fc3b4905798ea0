"""ResultStore: round trip, immutability, filters, readers beside the writer, bad files."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mbnas.store import SCHEMA_VERSION, FinishedRunError, ResultStore, StoreError


def test_round_trip(tmp_path: Path, helpers) -> None:
    path = tmp_path / "runs" / "store.sqlite"
    record = helpers.make_record(4, weights_path="weights/a.pt")
    with ResultStore(path) as store:
        assert store.get(*record.key) is None
        store.put(record)
        assert store.get(*record.key) == record
        assert len(store) == 1
    with ResultStore(path) as store:  # a new connection reads it back from disk
        assert store.get(*record.key) == record
    with ResultStore(path, read_only=True) as store:
        assert store.runs() == [record]


def test_finished_runs_are_immutable(tmp_path: Path, helpers) -> None:
    first = helpers.make_record(0)
    with ResultStore(tmp_path / "s.sqlite") as store:
        store.put(first)
        for again in (first, helpers.make_record(0, score=0.99)):
            with pytest.raises(FinishedRunError, match="already finished"):
                store.put(again)
        assert store.get(*first.key) == first
        assert store.count() == 1


def test_finished_rows_resist_raw_sql(tmp_path: Path, helpers) -> None:
    path = tmp_path / "s.sqlite"
    with ResultStore(path) as store:
        store.put(helpers.make_record(0))
        store.put(helpers.make_record(1, status="failed", score=None, error="boom"))
    conn = sqlite3.connect(path)
    try:
        for sql in ("UPDATE runs SET score = 0 WHERE status = 'finished'",
                    "DELETE FROM runs WHERE status = 'finished'"):
            with pytest.raises(sqlite3.DatabaseError, match="immutable"):
                conn.execute(sql)
        conn.execute("UPDATE runs SET seconds = 1 WHERE status = 'failed'")  # allowed
    finally:
        conn.close()


def test_failed_run_is_replaced_by_a_later_attempt(tmp_path: Path, helpers) -> None:
    failed = helpers.make_record(0, status="failed", score=None, error="CUDA out of memory")
    with ResultStore(tmp_path / "s.sqlite") as store:
        store.put(failed)
        store.put(helpers.make_record(1))
        retry = helpers.make_record(0, status="failed", score=None, error="again")
        store.put(retry)
        assert store.get(*failed.key) == retry
        done = helpers.make_record(0)
        store.put(done)
        assert store.get(*failed.key) == done
        # The replacement counts as stored last.
        assert [r.key for r in store.runs()] == [helpers.make_record(1).key, done.key]
        assert store.count() == 2


def test_query_filters_and_summaries(tmp_path: Path, helpers) -> None:
    records = [
        helpers.make_record(i, status="failed", score=None, error="x") if i % 5 == 0
        else helpers.make_record(i)
        for i in range(14)
    ]
    with ResultStore(tmp_path / "s.sqlite") as store:
        for r in records:
            store.put(r)
        assert store.runs() == records
        assert store.runs(arch_key="arch001") == records[6:12]
        assert store.runs(protocol_key="proto-b") == records[1::2]
        assert store.runs(status="failed") == [records[0], records[5], records[10]]
        assert store.runs(arch_key="arch001", protocol_key="proto-a", status="finished") == [
            records[6], records[8]
        ]
        assert store.runs(arch_key="nope") == []
        assert store.architectures() == ["arch000", "arch001", "arch002"]
        assert store.protocols() == ["proto-a", "proto-b"]
        assert store.count(status="finished") == 11
        with pytest.raises(StoreError, match="status must be one of"):
            store.runs(status="done")


def test_readers_beside_the_writer(tmp_path: Path, helpers) -> None:
    path = tmp_path / "s.sqlite"
    with ResultStore(path) as writer:
        writer.put(helpers.make_record(0))
        with ResultStore(path, read_only=True) as reader:
            assert [r.key for r in reader.runs()] == [helpers.make_record(0).key]
            writer.put(helpers.make_record(1))  # the reader does not block the writer
            assert reader.count() == 2  # and sees each commit
            with pytest.raises(StoreError, match="read-only"):
                reader.put(helpers.make_record(2))
        conn = sqlite3.connect(path)
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        conn.close()


def test_a_second_writer_process_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    code = (
        "import sys\nfrom mbnas.store import ResultStore, StoreError\n"
        "try:\n    ResultStore(sys.argv[1])\nexcept StoreError as e:\n    print(e)\n"
        "else:\n    print('opened')\n"
    )
    with ResultStore(path), ResultStore(path):  # the same process may open it twice
        busy = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True,
                              text=True, timeout=60)
    assert "another process" in busy.stdout and "only one driver" in busy.stdout
    free = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True,
                          text=True, timeout=60)
    assert free.stdout.strip() == "opened"


def test_random_bytes_are_not_a_store(tmp_path: Path) -> None:
    path = tmp_path / "weights.bin"
    path.write_bytes(np.random.default_rng(0).bytes(8192))
    for read_only in (False, True):
        with pytest.raises(StoreError, match=r"weights\.bin: not an mbnas result store"):
            ResultStore(path, read_only=read_only)


def test_other_sqlite_database_is_not_a_store(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE trials (id INTEGER)")
    conn.execute("CREATE TABLE studies (id INTEGER)")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="not an mbnas result store.*studies, trials"):
        ResultStore(path)


def test_store_from_a_newer_mbnas_is_refused(tmp_path: Path, helpers) -> None:
    path = tmp_path / "s.sqlite"
    with ResultStore(path) as store:
        store.put(helpers.make_record(0))
    conn = sqlite3.connect(path)
    conn.execute("UPDATE mbnas_meta SET value = ? WHERE key = 'schema_version'",
                 (str(SCHEMA_VERSION + 1),))
    conn.commit()
    conn.close()
    for read_only in (False, True):
        with pytest.raises(StoreError, match="newer mbnas.*upgrade"):
            ResultStore(path, read_only=read_only)


def test_read_only_needs_an_existing_store(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no result store there"):
        ResultStore(tmp_path / "missing.sqlite", read_only=True)
    (tmp_path / "empty.sqlite").touch()
    with pytest.raises(StoreError, match="empty database"):
        ResultStore(tmp_path / "empty.sqlite", read_only=True)
    assert not (tmp_path / "missing.sqlite").exists()


def test_closed_store_says_so(tmp_path: Path, helpers) -> None:
    store = ResultStore(tmp_path / "s.sqlite")
    store.close()
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.put(helpers.make_record(0))


def test_threads_of_the_driver_may_share_one_store(tmp_path: Path, helpers) -> None:
    from concurrent.futures import ThreadPoolExecutor

    records = [helpers.make_record(i) for i in range(24)]
    with ResultStore(tmp_path / "s.sqlite") as store, ThreadPoolExecutor(4) as pool:
        list(pool.map(store.put, records))
        assert sorted(r.key for r in store.runs()) == sorted(r.key for r in records)
        assert all(store.get(*r.key) == r for r in records)
