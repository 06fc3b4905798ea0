"""A dataset's fingerprint: what a result was computed from, so a changed dataset is noticed.

The fingerprint lists every file of the dataset (``dataset.json``, images, labels) with
its size and SHA-256, plus a hash of the preprocessing result (the slices and the
normalisation statistics). Its ``digest`` is stored with every run and in a run folder's
``config.yaml``; the whole fingerprint is kept in the run folder as
``dataset_fingerprint.json`` so a refusal can say which files changed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from mbnas.data.formats import read_dataset
from mbnas.data.slices import SliceData
from mbnas.errors import ConfigError
from mbnas.io import file_sha256

FINGERPRINT_FILE = "dataset_fingerprint.json"


def dataset_fingerprint(data_dir: str | Path, data: Any,
                        normalisation: dict[str, Any] | None = None) -> dict[str, Any]:
    """Files (relative path -> size, sha256), preprocessing hash and digest of a dataset.

    Args:
        data_dir: The dataset folder.
        data: Its preprocessed slices (at the size the run uses), or volumes (3D).
        normalisation: The per-channel normalisation the slices were made with.
    """
    dataset = read_dataset(data_dir)
    root = dataset.root.resolve()
    paths = [dataset.json_path]
    for case in dataset.cases:
        paths += [*case.images, case.label]
    files = {}
    for path in paths:
        resolved = Path(path).resolve()
        try:
            name = str(resolved.relative_to(root))
        except ValueError:
            name = str(resolved)
        files[name] = {"size": resolved.stat().st_size, "sha256": file_sha256(resolved)}
    h = hashlib.sha256()
    for array in _arrays(data):
        h.update(str(array.dtype).encode() + str(array.shape).encode())
        h.update(np.ascontiguousarray(array).tobytes())
    h.update(json.dumps(normalisation or {}, sort_keys=True).encode())
    preprocessing = h.hexdigest()
    blob = json.dumps({"files": files, "preprocessing": preprocessing}, sort_keys=True)
    return {"digest": hashlib.sha256(blob.encode()).hexdigest()[:16], "files": files,
            "preprocessing": preprocessing, "normalisation": normalisation or {}}


def _arrays(data: Any) -> Iterator[np.ndarray]:
    """The preprocessed arrays: the slices, or each case's volume one at a time."""
    if isinstance(data, SliceData):
        yield from (data.images, data.labels)
        return
    for case_id in data.case_ids:
        yield data.image(case_id)
        yield data.label(case_id)


def fingerprint_changes(old: dict[str, Any], new: dict[str, Any],
                        preprocessing: bool = True) -> list[str]:
    """What differs between two fingerprints, one short phrase per file or part."""
    a, b = old.get("files") or {}, new.get("files") or {}
    out = [f"{n} added" for n in sorted(set(b) - set(a))]
    out += [f"{n} removed" for n in sorted(set(a) - set(b))]
    out += [f"{n} changed" for n in sorted(set(a) & set(b)) if a[n] != b[n]]
    if preprocessing and old.get("preprocessing") != new.get("preprocessing"):
        out.append("the preprocessing result (slices or normalisation) changed")
    return out


def claim_fingerprint(folder: Path, fingerprint: dict[str, Any], files_only: bool = False
                      ) -> None:
    """Check ``fingerprint`` against the one a run folder was started with, or record it.

    With ``files_only`` (a search folder read by an evaluation, whose preprocessing may
    differ, e.g. another image size) only the dataset's files are compared and nothing
    is written.

    Raises:
        ConfigError: listing what changed, when the folder was started on other data.
    """
    path = Path(folder) / FINGERPRINT_FILE
    if path.is_file():
        try:
            old = json.loads(path.read_text())
            if not isinstance(old, dict):
                raise ValueError("not a mapping")
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{path}: not a readable dataset fingerprint ({exc}); restore "
                              "it or choose another --out") from None
        changes = fingerprint_changes(old, fingerprint, preprocessing=not files_only)
        if changes:
            shown = "; ".join(changes[:10]) + (f"; and {len(changes) - 10} more"
                                               if len(changes) > 10 else "")
            raise ConfigError(
                f"{folder}: the dataset changed since this run folder was started, so its "
                f"stored results no longer describe it ({shown}); restore the dataset or "
                "choose another --out")
        return
    if files_only:
        return
    from mbnas.io import atomic_write_json

    atomic_write_json(path, fingerprint)
