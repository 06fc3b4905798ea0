"""The one file lock of mbnas, and the single-writer rule of a result store built on it.

:class:`FileLock` is an exclusive, non-blocking ``flock`` on a file that holds the
owner's pid. The kernel drops it when the process ends, even on SIGKILL, so a crashed
driver never leaves a stale lock behind. It guards run folders (``RUN/.lock``, see
:mod:`mbnas.commands.common.runfolder`) and result stores (``<store>.lock``).

Within one process a store's lock is shared (reference-counted): several
``ResultStore`` objects of the same process may write, each transaction being atomic
in SQLite.
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

__all__ = ["FileLock", "acquire_writer_lock", "release_writer_lock"]


class FileLock:
    """An exclusive, non-blocking lock on ``path``; the file records the holder's pid."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._handle: Any = None

    def acquire(self) -> str | None:
        """Take the lock: None when taken, else the pid (text) of the process holding it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+")  # noqa: SIM115 - held open while the lock is held
        if fcntl is not None:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                handle.seek(0)
                holder = handle.read(64).strip() or "unknown"
                handle.close()
                return holder
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._handle = handle
        return None

    def release(self) -> None:
        """Give the lock back (closing the file releases the flock)."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None


# Write locks held by this process: path -> [lock, number of stores using it].
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
        lock = FileLock(Path(lock_path))
        holder = lock.acquire()
        if holder is not None:
            raise StoreError(
                f"{db_path}: another process (pid {holder}) is writing to this result "
                "store; only one driver may write to a store at a time (wait for it to "
                "finish, or open the store read-only)"
            )
        _LOCKS[lock_path] = [lock, 1]
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
            entry[0].release()
