"""The crash-safe result store: every training run, immutable once finished.

An embedded SQLite database (WAL mode, one writer: the driver process; any number of
read-only readers) keyed by (arch_key, protocol_key, fold, seed), plus atomic saving of
trained weights. See :mod:`mbnas.store.sqlite` for the concurrency and crash-safety
rules. Importing this package does not import torch.
"""

from __future__ import annotations

from mbnas.store.records import (
    RUN_STATUSES,
    FinishedRunError,
    RunKey,
    RunRecord,
    StoreError,
    runtime_versions,
    utc_now,
)
from mbnas.store.sqlite import SCHEMA_VERSION, ResultStore
from mbnas.store.weights import file_sha256, load_weights, save_weights

__all__ = [
    "RUN_STATUSES",
    "SCHEMA_VERSION",
    "FinishedRunError",
    "ResultStore",
    "RunKey",
    "RunRecord",
    "StoreError",
    "file_sha256",
    "load_weights",
    "runtime_versions",
    "save_weights",
    "utc_now",
]
