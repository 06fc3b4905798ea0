"""The 3D part of a protocol: the dataset's plan and how patches are drawn.

``Protocol.volume`` is None for the paper's 2D slices (and then absent from the
protocol's dict and key, so 2D results keep their keys). For a 3D search it holds the
plan made once per dataset (:mod:`mbnas.data.planning`) and the patch training settings.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from mbnas.errors import ConfigError
from mbnas.training.fields import check_fields, reject_unknown


@dataclass(frozen=True)
class VolumeConfig:
    """Settings of 3D patch training, the dataset's plan included.

    Attributes:
        patch_size: Patch (x, y, z) in voxels; empty: planned from the median shape
            within ``memory_budget_gb``.
        spacing: Target spacing (x, y, z) in mm every volume is resampled to; empty
            before planning (the dataset's median).
        strides: Planned stride (x, y, z) of each resolution level (what ``down``
            halves); empty before planning.
        iterations_per_epoch: Training steps per epoch (nnU-Net: 250).
        foreground_oversampling: Fraction of the patches of a batch centred on a random
            foreground voxel (nnU-Net: 0.33); the rest lie anywhere in the volume.
        memory_budget_gb: The memory one training step may use when planning the patch.
        overlap: Overlap of neighbouring windows of the sliding-window validation and
            prediction (Gaussian-weighted, MONAI's ``sliding_window_inference``).
        rotate_degrees: Largest in-plane (about the through-plane axis) rotation.
    """

    patch_size: tuple[int, ...] = ()
    spacing: tuple[float, ...] = ()
    strides: tuple[tuple[int, ...], ...] = ()
    iterations_per_epoch: int = 50
    foreground_oversampling: float = 0.33
    memory_budget_gb: float = 8.0
    overlap: float = 0.5
    rotate_degrees: float = 15.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "patch_size", tuple(int(p) for p in self.patch_size))
        object.__setattr__(self, "spacing", tuple(float(s) for s in self.spacing))
        object.__setattr__(self, "strides", tuple(tuple(int(k) for k in s)
                                                  for s in self.strides))
        check_fields(self, "protocol.volume")
        problems = []
        if self.patch_size and (len(self.patch_size) != 3 or min(self.patch_size) < 1):
            problems.append(f"patch_size must be 3 positive sizes, got {self.patch_size}")
        if self.spacing and (len(self.spacing) != 3 or min(self.spacing) <= 0):
            problems.append(f"spacing must be 3 positive sizes in mm, got {self.spacing}")
        if any(len(s) != 3 or not set(s) <= {1, 2} for s in self.strides):
            problems.append(f"strides must be (x, y, z) of 1 or 2 per level, got {self.strides}")
        if self.iterations_per_epoch < 1:
            problems.append(f"iterations_per_epoch must be >= 1, got {self.iterations_per_epoch}")
        if not 0 <= self.foreground_oversampling <= 1:
            problems.append("foreground_oversampling must be in [0, 1], got "
                            f"{self.foreground_oversampling}")
        if not self.memory_budget_gb > 0:
            problems.append(f"memory_budget_gb must be > 0, got {self.memory_budget_gb}")
        if not 0 <= self.overlap < 1:
            problems.append(f"overlap must be in [0, 1), got {self.overlap}")
        if problems:
            raise ConfigError("invalid protocol.volume: " + "; ".join(problems))

    @property
    def planned(self) -> bool:
        """Whether the dataset's plan (spacing, strides, patch) is filled in."""
        return bool(self.patch_size and self.spacing and self.strides)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["patch_size"] = list(self.patch_size)
        d["spacing"] = list(self.spacing)
        d["strides"] = [list(s) for s in self.strides]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> VolumeConfig | None:
        if d is None:
            return None
        d = dict(d)
        reject_unknown(cls, d, "volume")
        for name in ("patch_size", "spacing"):
            if name in d:
                d[name] = tuple(d[name])
        if "strides" in d:
            d["strides"] = tuple(tuple(s) for s in d["strides"])
        return cls(**d)
