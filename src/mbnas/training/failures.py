"""Why a training run failed: its environment (retried on resume) or its network (final).

An environment failure says nothing about the architecture: the device was missing or
out of memory, the disk was full, a worker was lost. Such a run is trained again when the
search or evaluation resumes, and the search does not tell its strategy a score for a
batch that holds one, so the resumed trajectory is the one an undisturbed run takes.
A network failure (a non-finite loss, an error raised inside the model) is a result: it
stays recorded, and only ``--retry-failed`` trains it again.
"""

from __future__ import annotations

import errno

from mbnas.errors import EXIT_RUNS_FAILED, MbnasError

ENVIRONMENT, NETWORK = "environment", "network"

# OSError numbers of a machine's trouble, not of a network's.
_ENV_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EROFS, errno.EACCES,
               errno.EPERM, errno.ENOMEM, errno.EMFILE, errno.ENFILE, errno.EFBIG}
# Messages of torch's errors when a device is absent or exhausted.
_ENV_MESSAGES = ("not compiled with cuda", "no nvidia driver", "cuda driver",
                 "cuda error: out of memory", "out of memory", "no cuda gpus",
                 "cuda is not available", "device-side", "cudnn_status_not_initialized",
                 "unexpected pos", "file write failed", "nccl")


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite: the network diverged."""


class RunFailure(MbnasError):
    """Runs of a search or evaluation failed so that it cannot go on or give a result.

    The CLI prints it as one line and exits with code 1 (the input was fine; the runs
    were not).
    """

    exit_code = EXIT_RUNS_FAILED


def failure_kind(exc: BaseException) -> str:
    """:data:`ENVIRONMENT` or :data:`NETWORK` for an exception raised by a training run."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, NonFiniteLossError):
            return NETWORK
        if isinstance(current, MemoryError):
            return ENVIRONMENT
        if isinstance(current, OSError) and (current.errno in _ENV_ERRNOS
                                             or current.errno is None):
            return ENVIRONMENT
        name = type(current).__name__
        if name == "OutOfMemoryError" or name.endswith(("ActorError", "WorkerCrashedError",
                                                         "NodeDiedError", "ObjectLostError")):
            return ENVIRONMENT
        text = str(current).lower()
        if any(m in text for m in _ENV_MESSAGES):
            return ENVIRONMENT
        current = current.__cause__ or current.__context__
    return NETWORK


def last_line(error: str | None) -> str:
    """The last line of a stored traceback: the exception and its message."""
    lines = (error or "").strip().splitlines()
    return lines[-1] if lines else "unknown error"
