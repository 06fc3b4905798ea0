"""Integrity of a preprocessing cache entry: content checksums written last, checked on use.

``preprocess.json`` (written after the slices) records the SHA-256 of ``slices.npz`` and
``slices.json``. An entry whose files do not match, or (for entries written before the
checksums) cannot be read, is broken: :func:`mbnas.data.preprocess.preprocess` rebuilds it
with a warning instead of failing on it forever.
"""

from __future__ import annotations

import json
from pathlib import Path

from mbnas.io import file_sha256

CHECKED_FILES = ("slices.npz", "slices.json")


def cache_checksums(folder: Path) -> dict[str, str]:
    """SHA-256 of the cache entry's data files, for ``preprocess.json``."""
    return {name: file_sha256(folder / name) for name in CHECKED_FILES}


def cache_problem(folder: Path) -> str | None:
    """Why a complete-looking cache entry is broken, or None when it is sound."""
    try:
        meta = json.loads((folder / "preprocess.json").read_text())
        sums = meta.get("checksums") if isinstance(meta, dict) else None
        if not isinstance(meta, dict):
            return "preprocess.json is not a JSON object"
        if isinstance(sums, dict):
            bad = [n for n in CHECKED_FILES if sums.get(n) != file_sha256(folder / n)]
            return f"{', '.join(bad)} do(es) not match the checksum" if bad else None
    except (OSError, ValueError) as exc:
        return f"preprocess.json is unreadable ({exc})"
    from mbnas.data.slices import SliceData

    try:  # an entry from before the checksums: sound if it loads
        SliceData.load(folder)
    except Exception as exc:
        return f"unreadable ({type(exc).__name__}: {exc})"
    return None
