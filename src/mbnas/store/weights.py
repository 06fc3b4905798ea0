"""Trained weights on disk: written atomically, read without unpickling arbitrary code."""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mbnas.io import atomic_write
from mbnas.store.records import StoreError

__all__ = ["load_weights", "save_weights"]


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
    atomic_write(path, lambda f: torch.save(state_dict, f))
    return path


def load_weights(path: str | Path) -> dict[str, Any]:
    """Load weights saved by :func:`save_weights` onto the CPU.

    Uses ``torch.load(..., weights_only=True)``, which refuses pickled code, so a weights
    file from elsewhere cannot run anything when loaded.

    Raises:
        StoreError: If the file is missing or is not a readable weights file.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise StoreError(f"{path}: no weights file there")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, pickle.UnpicklingError, EOFError, ValueError, OSError) as exc:
        raise StoreError(
            f"{path}: not a readable weights file ({type(exc).__name__}: {exc}); "
            "train the run again to recreate it"
        ) from exc
