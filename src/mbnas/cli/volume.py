"""The 3D protocol flags of the training commands (``Protocol.volume``, docs/3d.md)."""

from __future__ import annotations

import argparse
from typing import Any

from mbnas.errors import ConfigError


def add_volume_arguments(p: argparse.ArgumentParser) -> None:
    """``--patch-size``, ``--iterations`` and ``--memory-budget``."""
    p.add_argument("--patch-size", metavar="X,Y,Z",
                   help="3D spaces: training patch in voxels (default: planned from the "
                        "median shape within --memory-budget)")
    p.add_argument("--iterations", type=int, metavar="N",
                   help="3D spaces: training steps per epoch (default 50; nnU-Net: 250)")
    p.add_argument("--memory-budget", type=float, metavar="GB",
                   help="3D spaces: memory one training step may use when the patch is "
                        "planned (default 8)")


def volume_flags(args: argparse.Namespace) -> dict[str, Any]:
    """``Protocol.volume`` settings from the 3D flags given (empty when none)."""
    out: dict[str, Any] = {}
    patch = getattr(args, "patch_size", None)
    if patch is not None:
        try:
            out["patch_size"] = [int(v) for v in patch.replace("x", ",").split(",")]
        except ValueError:
            raise ConfigError(f"--patch-size: {patch!r} is not three sizes X,Y,Z") from None
        if len(out["patch_size"]) != 3:
            raise ConfigError(f"--patch-size: {patch!r} is not three sizes X,Y,Z")
    for flag, name in (("iterations", "iterations_per_epoch"),
                       ("memory_budget", "memory_budget_gb")):
        if getattr(args, flag, None) is not None:
            out[name] = getattr(args, flag)
    return out
