"""The result store: one SQLite file, one row per training run, finished runs never change.

Concurrency model (why there is never a "database is locked"):

* **One writer.** Only the driver process (the one running the search or the training
  command) opens the store for writing; workers return their results to it. Opening a
  store for writing takes an OS lock on ``<store>.lock``, so a second *process* that
  tries gets a clear :class:`StoreError` instead of interleaved writes. (Several
  :class:`ResultStore` objects in the same process share that lock.)
* **Any number of readers.** Reports open the store with ``read_only=True`` (an SQLite
  ``mode=ro`` URI) at any time, also while the driver writes: the database is in WAL
  mode, so readers see the last committed runs and never block the writer.

Crash safety: :meth:`ResultStore.put` is one transaction. With ``synchronous=FULL`` the
write-ahead log is synced to disk at every commit, so a run reported as stored survives
a killed process or a power cut; a run whose commit did not finish leaves no trace.
Runs take minutes to train, so one fsync per run costs nothing measurable.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from types import TracebackType
from typing import Any

from mbnas.store.lock import acquire_writer_lock, release_writer_lock
from mbnas.store.records import (
    JSON_FIELDS,
    RUN_STATUSES,
    FinishedRunError,
    RunRecord,
    StoreError,
    to_json,
    utc_now,
)

__all__ = ["SCHEMA_VERSION", "ResultStore"]

# 2: failure kind, weights checksum and dataset fingerprint per run (schema 1 stores are
# upgraded when opened for writing, and read as they are).
SCHEMA_VERSION = 2
_APPLICATION = "mbnas-result-store"

_COLUMNS = (
    "arch_key", "protocol_key", "fold", "seed", "status", "score", "curve", "metrics",
    "seconds", "device", "versions", "architecture", "protocol", "started_at",
    "finished_at", "error", "weights_path", "failure", "weights_sha256", "data_fingerprint",
)
# Columns added by schema 2, absent from schema 1 stores.
_V2_COLUMNS = ("failure", "weights_sha256", "data_fingerprint")

_SCHEMA = (
    "CREATE TABLE mbnas_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    f"""CREATE TABLE runs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        arch_key TEXT NOT NULL,
        protocol_key TEXT NOT NULL,
        fold INTEGER NOT NULL,
        seed INTEGER NOT NULL,
        status TEXT NOT NULL CHECK (status IN {RUN_STATUSES!r}),
        score REAL,
        curve TEXT NOT NULL,
        metrics TEXT NOT NULL,
        seconds REAL NOT NULL,
        device TEXT NOT NULL,
        versions TEXT NOT NULL,
        architecture TEXT NOT NULL,
        protocol TEXT NOT NULL,
        started_at TEXT NOT NULL,
        finished_at TEXT NOT NULL,
        error TEXT,
        weights_path TEXT,
        failure TEXT,
        weights_sha256 TEXT,
        data_fingerprint TEXT,
        UNIQUE (arch_key, protocol_key, fold, seed)
    )""",
    "CREATE INDEX runs_by_protocol ON runs (protocol_key, arch_key)",
    # Defence in depth: even raw SQL cannot change or drop a finished run.
    """CREATE TRIGGER finished_runs_no_update BEFORE UPDATE ON runs
    WHEN OLD.status = 'finished' BEGIN SELECT RAISE(ABORT, 'finished runs are immutable'); END""",
    """CREATE TRIGGER finished_runs_no_delete BEFORE DELETE ON runs
    WHEN OLD.status = 'finished' BEGIN SELECT RAISE(ABORT, 'finished runs are immutable'); END""",
)

class ResultStore:
    """The SQLite result store of training runs, keyed by (arch_key, protocol_key, fold, seed).

    Args:
        path: The database file; created (with its folder) when it does not exist,
            unless ``read_only``.
        read_only: Open for reading only; any number of readers may do so while the
            single writer is working.
        timeout: Seconds to wait for SQLite's own locks before giving up.

    Raises:
        StoreError: If the file is not an mbnas result store, was written by a newer
            mbnas, does not exist (read-only), or another process is writing to it.

    Example:
        >>> with ResultStore("runs/store.sqlite") as store:  # doctest: +SKIP
        ...     store.put(record)
        ...     store.get(record.arch_key, record.protocol_key, 0, 0)
    """

    def __init__(self, path: str | Path, *, read_only: bool = False, timeout: float = 30.0):
        self._path = Path(path)
        self._read_only = read_only
        self._lock: str | None = None
        self._select_columns = ", ".join(_COLUMNS)
        self._conn: sqlite3.Connection | None = None
        # One connection shared by the threads of the driver; the mutex keeps each
        # transaction whole.
        self._mutex = threading.RLock()
        if read_only:
            if not self._path.is_file():
                raise StoreError(f"{self._path}: no result store there (no such file)")
            target, uri = self._path.resolve().as_uri() + "?mode=ro", True
        else:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            self._lock = acquire_writer_lock(self._path)
            target, uri = str(self._path), False
        try:
            # isolation_level=None: we issue BEGIN and COMMIT ourselves.
            self._conn = sqlite3.connect(
                target, uri=uri, timeout=timeout, isolation_level=None, check_same_thread=False
            )
            self._open()
        except BaseException as exc:
            self.close()
            if isinstance(exc, sqlite3.Error):
                raise StoreError(f"{self._path}: cannot open the result store ({exc})") from exc
            raise

    # ---- opening -------------------------------------------------------------------------

    def _open(self) -> None:
        conn = self._connection
        try:
            rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            tables = {r[0] for r in rows}
        except sqlite3.DatabaseError as exc:
            if _has_sqlite_header(self._path):
                raise StoreError(
                    f"{self._path}: damaged result store ({exc}); restore it from a copy, or "
                    "move it away to train the runs again"
                ) from exc
            raise StoreError(
                f"{self._path}: not an mbnas result store (not an SQLite database: {exc}); "
                "point to the store file of a run folder, or to a new file"
            ) from exc
        if not self._read_only:
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StoreError(
                    f"{self._path}: SQLite cannot use WAL mode here (got {mode!r}); "
                    "put the store on a local file system"
                )
            conn.execute("PRAGMA synchronous=FULL")
        if not tables:
            if self._read_only:
                raise StoreError(f"{self._path}: empty database, not an mbnas result store yet")
            self._create()
            return
        if "mbnas_meta" not in tables:
            names = ", ".join(sorted(t for t in tables if not t.startswith("sqlite_")))
            raise StoreError(
                f"{self._path}: not an mbnas result store (an SQLite database with tables "
                f"{names}); point to the store file of a run folder, or to a new file"
            )
        meta = dict(conn.execute("SELECT key, value FROM mbnas_meta").fetchall())
        if meta.get("application") != _APPLICATION:
            raise StoreError(f"{self._path}: not an mbnas result store (unknown mbnas_meta)")
        try:
            version = int(meta.get("schema_version", ""))
        except ValueError:
            raise StoreError(f"{self._path}: damaged result store (no schema version)") from None
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self._path}: written by a newer mbnas (store schema {version}, this mbnas "
                f"reads up to {SCHEMA_VERSION}); upgrade mbnas to read it"
            )
        if version < 1:
            raise StoreError(f"{self._path}: store schema {version} is no longer supported")
        if version == 1:
            self._upgrade_v1()

    def _upgrade_v1(self) -> None:
        """Schema 1 has no failure, checksum or fingerprint columns: add them (writer), or
        read them as NULL (reader)."""
        if self._read_only:
            self._select_columns = ", ".join(
                f"NULL AS {c}" if c in _V2_COLUMNS else c for c in _COLUMNS)
            return
        conn = self._connection
        conn.execute("BEGIN IMMEDIATE")
        try:
            for column in _V2_COLUMNS:
                conn.execute(f"ALTER TABLE runs ADD COLUMN {column} TEXT")
            conn.execute("UPDATE mbnas_meta SET value = ? WHERE key = 'schema_version'",
                         (str(SCHEMA_VERSION),))
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def _create(self) -> None:
        from mbnas.version import __version__

        conn = self._connection
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _SCHEMA:
                conn.execute(statement)
            conn.executemany(
                "INSERT INTO mbnas_meta (key, value) VALUES (?, ?)",
                [
                    ("application", _APPLICATION),
                    ("schema_version", str(SCHEMA_VERSION)),
                    ("created_at", utc_now()),
                    ("created_by", f"mbnas {__version__}"),
                ],
            )
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    # ---- properties and life cycle -----------------------------------------------------

    @property
    def path(self) -> Path:
        """The database file; relative ``weights_path`` values are relative to its folder."""
        return self._path

    @property
    def read_only(self) -> bool:
        return self._read_only

    @property
    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreError(f"{self._path}: the result store is closed")
        return self._conn

    def close(self) -> None:
        """Close the database and give up the write lock; closing twice is harmless."""
        with self._mutex:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            release_writer_lock(self._lock)
            self._lock = None

    def __enter__(self) -> ResultStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        mode = "read-only" if self._read_only else "writer"
        return f"ResultStore({str(self._path)!r}, {mode})"

    # ---- writing -----------------------------------------------------------------------

    def put(self, record: RunRecord) -> None:
        """Store one run, committed at once in a single transaction.

        A failed run may be replaced by a later attempt (the new row counts as inserted
        now); a finished run never changes.

        Raises:
            FinishedRunError: If the store already holds a finished run with this key.
            StoreError: If the store is read-only or the write fails.
        """
        if not isinstance(record, RunRecord):
            raise TypeError(f"put() takes a RunRecord, got {type(record).__name__}")
        if self._read_only:
            raise StoreError(f"{self._path}: opened read-only; runs cannot be stored")
        row = tuple(
            to_json(getattr(record, c)) if c in JSON_FIELDS else getattr(record, c)
            for c in _COLUMNS
        )
        where = "arch_key = ? AND protocol_key = ? AND fold = ? AND seed = ?"
        with self._mutex:
            self._put(row, record.key, where)

    def _put(self, row: tuple[Any, ...], key: tuple[Any, ...], where: str) -> None:
        conn = self._connection
        try:
            conn.execute("BEGIN IMMEDIATE")
            old = conn.execute(f"SELECT status FROM runs WHERE {where}", key).fetchone()
            if old is not None and old[0] == "finished":
                raise FinishedRunError(
                    f"{self._path}: run {key} is already finished and stored; "
                    "finished runs are immutable"
                )
            if old is not None:
                conn.execute(f"DELETE FROM runs WHERE {where}", key)
            placeholders = ", ".join("?" * len(_COLUMNS))
            conn.execute(f"INSERT INTO runs ({', '.join(_COLUMNS)}) VALUES ({placeholders})", row)
            conn.execute("COMMIT")
        except BaseException as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise StoreError(f"{self._path}: could not store run {key} ({exc})") from exc
            raise

    # ---- reading -----------------------------------------------------------------------

    def _select(self, where: str = "", params: tuple[Any, ...] = ()) -> list[RunRecord]:
        sql = f"SELECT {self._select_columns} FROM runs {where} ORDER BY id"
        return [_record(row) for row in self._query(sql, params)]

    def _query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._mutex:
            try:
                return self._connection.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise StoreError(f"{self._path}: cannot read the result store ({exc})") from exc

    def get(self, arch_key: str, protocol_key: str, fold: int, seed: int) -> RunRecord | None:
        """The run with this key, or None when the store holds none."""
        found = self._select(
            "WHERE arch_key = ? AND protocol_key = ? AND fold = ? AND seed = ?",
            (arch_key, protocol_key, int(fold), int(seed)),
        )
        return found[0] if found else None

    def runs(
        self,
        arch_key: str | None = None,
        protocol_key: str | None = None,
        status: str | None = None,
    ) -> list[RunRecord]:
        """Stored runs matching every filter given, in the order they were stored."""
        if status is not None and status not in RUN_STATUSES:
            raise StoreError(f"status must be one of {RUN_STATUSES}, got {status!r}")
        clauses, params = [], []
        for column, value in (("arch_key", arch_key), ("protocol_key", protocol_key),
                              ("status", status)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        return self._select(where, tuple(params))

    def _distinct(self, column: str, protocol_key: str | None) -> list[str]:
        where, params = ("WHERE protocol_key = ?", (protocol_key,)) if protocol_key else ("", ())
        sql = f"SELECT {column} FROM runs {where} GROUP BY {column} ORDER BY MIN(id)"
        return [r[0] for r in self._query(sql, params)]

    def architectures(self, protocol_key: str | None = None) -> list[str]:
        """Architecture keys with at least one stored run, in order of their first run."""
        return self._distinct("arch_key", protocol_key)

    def protocols(self) -> list[str]:
        """Protocol keys with at least one stored run, in order of their first run."""
        return self._distinct("protocol_key", None)

    def count(self, status: str | None = None) -> int:
        """Number of stored runs, of one status if given."""
        params: tuple[str, ...]
        if status is None:
            sql, params = "SELECT COUNT(*) FROM runs", ()
        elif status in RUN_STATUSES:
            sql, params = "SELECT COUNT(*) FROM runs WHERE status = ?", (status,)
        else:
            raise StoreError(f"status must be one of {RUN_STATUSES}, got {status!r}")
        return int(self._query(sql, params)[0][0])

    def __len__(self) -> int:
        return self.count()


def _has_sqlite_header(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(16) == b"SQLite format 3\x00"
    except OSError:
        return False


def _record(row: tuple[Any, ...]) -> RunRecord:
    values = dict(zip(_COLUMNS, row, strict=True))
    for name in JSON_FIELDS:
        values[name] = json.loads(values[name])
    return RunRecord(**values)
