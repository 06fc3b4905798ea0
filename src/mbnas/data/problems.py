"""Problems found in a dataset: what `mbnas check` prints and what loading refuses."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from mbnas.errors import DatasetError

Severity = Literal["error", "warning"]

# How many errors a DatasetError message lists before it says "and N more".
_MAX_LISTED = 20


@dataclass(frozen=True)
class Problem:
    """One finding about one file.

    Attributes:
        severity: ``"error"`` (the dataset cannot be used) or ``"warning"`` (it can,
            but something looks wrong).
        path: The file (or folder) the problem is about.
        message: What is wrong, in words a user can act on.
    """

    severity: Severity
    path: str
    message: str

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    def __str__(self) -> str:
        return f"{self.severity.upper()} {self.path}: {self.message}"


def error(path: str | Path, message: str) -> Problem:
    return Problem("error", str(path), message)


def warning(path: str | Path, message: str) -> Problem:
    return Problem("warning", str(path), message)


def raise_if_errors(data_dir: str | Path, problems: Iterable[Problem]) -> None:
    """Raise a DatasetError listing every error among ``problems``, if there is one."""
    errors = [p for p in problems if p.is_error]
    if not errors:
        return
    lines = [str(p) for p in errors[:_MAX_LISTED]]
    if len(errors) > _MAX_LISTED:
        lines.append(f"... and {len(errors) - _MAX_LISTED} more")
    raise DatasetError(
        f"dataset {data_dir} has {len(errors)} error(s); fix them "
        f"(`mbnas check {data_dir}` lists them all):\n  " + "\n  ".join(lines)
    )
