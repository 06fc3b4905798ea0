"""Symlinks in a dataset: followed inside the dataset folder (with a warning), refused outside.

A path from ``dataset.json`` or a folder listing is compared as resolved against the
resolved dataset root, so ``imagesTr/root -> /`` plus ``./imagesTr/root/etc/...`` cannot
make mbnas read files outside the dataset.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from mbnas.data.problems import Problem, error, warning


def symlink_problems(root: Path, path: Path) -> tuple[bool, list[Problem]]:
    """(usable, problems) of one dataset file: an error when it resolves outside ``root``,
    a warning when a symlink is followed to stay inside."""
    real_root = root.resolve()
    real = path.resolve()
    if not real.is_relative_to(real_root):
        return False, [error(path, f"resolves to {real} through a symlink, outside the "
                                   f"dataset folder {real_root}; copy the file into it")]
    try:
        plain = real_root / path.relative_to(root)
    except ValueError:
        plain = path
    if real != Path(*plain.parts):
        return True, [warning(path, f"is reached through a symlink (to {real}); results "
                                    "depend on where it points")]
    return True, []


def drop_escaping_cases(dataset: Any, root: Path) -> tuple[Any, list[Problem]]:
    """The dataset without cases whose files leave the root, and the problems found."""
    problems: list[Problem] = []
    kept = []
    for case in dataset.cases:
        ok = True
        for path in (*case.images, case.label):
            usable, p = symlink_problems(root, path)
            problems += p
            ok = ok and usable
        if ok:
            kept.append(case)
    if len(kept) == len(dataset.cases):
        return dataset, problems
    return dataclasses.replace(dataset, cases=tuple(kept)), problems
