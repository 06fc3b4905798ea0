"""Trained weights on disk: written atomically, read without unpickling arbitrary code."""

from __future__ import annotations

import io
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mbnas.io import atomic_write, file_sha256
from mbnas.store.records import StoreError

__all__ = ["check_checksum", "file_sha256", "load_weights", "save_weights"]


def save_weights(state_dict: Mapping[str, Any], path: str | Path) -> Path:
    """Save a model's ``state_dict`` with ``torch.save``, atomically.

    The file is written to a temporary file in the same folder, synced, then renamed
    into place, so a crash at any point leaves either the previous file or the new one.

    Args:
        state_dict: The tensors to save, e.g. ``model.state_dict()``.
        path: Destination file (its folder is created).

    Returns:
        The path written.
    """
    import torch  # here, so that reading a store does not import torch

    if not isinstance(state_dict, Mapping):
        raise TypeError(f"save_weights() takes a state_dict mapping, got {type(state_dict)}")
    path = Path(path)
    # Serialised in memory first, so a full disk is a plain OSError (ENOSPC) naming the
    # file, not torch's "unexpected pos".
    buffer = io.BytesIO()
    torch.save(state_dict, buffer)
    blob = buffer.getvalue()
    try:
        atomic_write(path, lambda f: f.write(blob))
    except OSError as exc:
        exc.filename = exc.filename or str(path)
        raise
    return path


def check_checksum(path: Path, sha256: str | None) -> None:
    """Refuse a network file whose content is not the one recorded (``sha256``; None:
    nothing recorded, nothing checked).

    Raises:
        StoreError: If the file's SHA-256 differs.
    """
    if sha256 is not None and file_sha256(path) != sha256:
        raise StoreError(f"{path}: the weights file does not match its recorded checksum "
                         "(changed or damaged since it was trained); train the run again "
                         "or restore the file")


def load_weights(path: str | Path, sha256: str | None = None) -> dict[str, Any]:
    """Load weights saved by :func:`save_weights` onto the CPU.

    Uses ``torch.load(..., weights_only=True)``, which refuses pickled code, so a weights
    file from elsewhere cannot run anything when loaded.

    Args:
        path: The weights file.
        sha256: Its recorded checksum; when given, a file whose content differs (a flipped
            byte, an overwritten copy) is refused.

    Raises:
        StoreError: If the file is missing, is not a readable weights file, or does not
            match its checksum.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise StoreError(f"{path}: no weights file there")
    check_checksum(path, sha256)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, pickle.UnpicklingError, EOFError, ValueError, OSError) as exc:
        raise StoreError(
            f"{path}: not a readable weights file ({type(exc).__name__}: {exc}); "
            "train the run again to recreate it"
        ) from exc
