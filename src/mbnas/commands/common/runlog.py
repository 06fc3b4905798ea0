"""Plain, timestamped log files in output folders (``RUN/search.log``, ``EVAL/evaluate.log``).

Everything mbnas logs goes through the standard :mod:`logging` module under the
``mbnas`` logger. A long command attaches a file handler to it for its output folder, so
the file is written whatever the terminal shows (under ``sbatch`` or ``nohup`` too), and
appended to on resume.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

LOGGER = "mbnas"
FORMAT = "%(asctime)s %(levelname)s %(message)s"
DATE_FORMAT = "%Y-%m-%dT%H:%M:%S%z"


@contextmanager
def run_log(path: Path) -> Iterator[logging.Logger]:
    """Log the ``mbnas`` logger's INFO and above to ``path`` while the block runs.

    An exception or Ctrl-C leaving the block is logged before it propagates.
    """
    logger = logging.getLogger(LOGGER)
    logger.setLevel(logging.INFO)
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter(FORMAT, DATE_FORMAT))
    logger.addHandler(handler)
    try:
        yield logger
    except KeyboardInterrupt:
        logger.warning("interrupted: finished runs are kept; run the same command to resume")
        raise
    except BaseException as exc:
        logger.error("stopped: %s: %s", type(exc).__name__, exc)
        raise
    finally:
        logger.removeHandler(handler)
        handler.close()
