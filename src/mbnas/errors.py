"""Errors a user can meet, and the exit codes of every command (README "Exit codes").

The CLI prints an error as one line and exits with its ``exit_code``
(:data:`EXIT_REFUSED` unless the error says otherwise).
"""

from __future__ import annotations

#: Done.
EXIT_DONE = 0
#: Finished, but some training runs failed (their tracebacks are in the store).
EXIT_RUNS_FAILED = 1
#: Bad input or refused: a one-line message names the file or setting and the problem.
EXIT_REFUSED = 2
#: Interrupted (Ctrl-C); finished work is kept, the same command resumes.
EXIT_INTERRUPTED = 130


class MbnasError(Exception):
    """Base class for errors caused by the user's input or settings, not by a bug.

    The message must say what is wrong (naming the file where there is one) and
    what to do about it.
    """

    exit_code = EXIT_REFUSED


class DatasetError(MbnasError):
    """A dataset folder or file that cannot be used."""


class GenotypeError(MbnasError, ValueError):
    """A genotype that is not a valid network of its search space."""


class ConfigError(MbnasError):
    """Settings that are invalid or conflict with an existing run folder."""


class HookError(MbnasError):
    """A progress hook given to the Python API raised: the command stops there (runs
    finished before are kept; no run is recorded as failed because of the hook). The
    hook's own exception is the ``__cause__``."""


class MetricError(MbnasError, ValueError):
    """Masks, labels or spacing that a metric cannot be computed on."""
