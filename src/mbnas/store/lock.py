"""The single-writer rule of a result store, enforced with an OS lock on ``<store>.lock``.

The lock is an ``flock`` held while a writer is open; the kernel drops it when the
process ends, even on SIGKILL, so a crashed driver never leaves a stale lock behind.
Within one process the lock is shared (reference-counted): several ``ResultStore``
objects of the same process may write, each transaction being atomic in SQLite.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from mbnas.store.records import StoreError

try:  # POSIX; elsewhere the single-writer rule is documented but not enforced
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

__all__ = ["acquire_writer_lock", "release_writer_lock"]

# Write locks held by this process: path -> [open file, number of stores using it].
_LOCKS: dict[str, list[Any]] = {}
_LOCKS_GUARD = threading.Lock()


def acquire_writer_lock(db_path: Path) -> str | None:
    """Take the write lock of a store for this process; returns the token to release.

    Raises:
        StoreError: If another process holds it.
    """
    if fcntl is None:  # pragma: no cover
        return None
    lock_path = str(db_path.resolve()) + ".lock"
    with _LOCKS_GUARD:
        if lock_path in _LOCKS:
            _LOCKS[lock_path][1] += 1
            return lock_path
        handle = open(lock_path, "a+")  # noqa: SIM115 - held open while the store is open
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise StoreError(
                f"{db_path}: another process (pid {holder}) is writing to this result "
                "store; only one driver may write to a store at a time (wait for it to "
                "finish, or open the store read-only)"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        _LOCKS[lock_path] = [handle, 1]
        return lock_path


def release_writer_lock(lock_path: str | None) -> None:
    """Give back one use of a lock taken by :func:`acquire_writer_lock`."""
    if lock_path is None:
        return
    with _LOCKS_GUARD:
        entry = _LOCKS.get(lock_path)
        if entry is None:
            return
        entry[1] -= 1
        if entry[1] == 0:
            del _LOCKS[lock_path]
            entry[0].close()  # closing the file releases the flock
