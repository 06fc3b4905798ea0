"""The preprocessed 2D dataset: every axial slice of every case, ready for training.

This is the one value that passes from the data layer to the training engine. It holds
plain NumPy arrays so that the engine can move the whole dataset to the training device
in one copy, and it keeps enough geometry per case (spacing in mm, slice order) to put
slices back together into 3D volumes for per-case Dice, HD95 and Surface Dice.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mbnas.errors import DatasetError
from mbnas.io import atomic_write


@dataclass(frozen=True)
class CaseInfo:
    """Geometry and provenance of one case (patient) after preprocessing.

    Attributes:
        case_id: The case identifier from the dataset (e.g. ``spleen_2``).
        spacing: Voxel size in mm in the order of the slice arrays' axes:
            (through-plane, rows, columns). The in-plane values are the effective
            spacing after in-plane resizing; the through-plane value is the original.
        site: The acquisition site or scanner group, when the dataset records one.
        crop: Where the slices' window starts (row, column) in the case's grid resampled
            to ``target_spacing`` (negative: padded); None for fit-to-size slices.
        foreground: Labelled voxels (kept in the window, before cropping) of a
            ``target_spacing`` case; None for fit-to-size slices, which crop nothing.
        extent_mm: In-plane size (mm, the larger side) of the bounding box of the case's
            labels at ``target_spacing``; None for fit-to-size slices.
    """

    case_id: str
    spacing: tuple[float, float, float]
    site: str | None = None
    crop: tuple[int, int] | None = None
    foreground: tuple[int, int] | None = None
    extent_mm: float | None = None

    @property
    def cropped_fraction(self) -> float:
        """The share of the case's labelled voxels that cropping dropped (0 if none)."""
        if not self.foreground or not self.foreground[1]:
            return 0.0
        return 1.0 - self.foreground[0] / self.foreground[1]


@dataclass(frozen=True, eq=False)
class SliceData:
    """All 2D slices of a dataset, in case order and slice order within a case.

    Attributes:
        images: float32 array (N, C, H, W), normalised intensities.
        labels: uint8 array (N, H, W), class ids 0..n_classes-1.
        case_index: int32 array (N,), index into ``cases`` of each slice.
        slice_index: int32 array (N,), position of the slice within its case volume.
        cases: One entry per case, in the order of ``case_index``.
        label_names: Class id -> name, background (0) included.
        channel_names: One name per input channel (e.g. ``("T2", "ADC")``).
    """

    images: np.ndarray
    labels: np.ndarray
    case_index: np.ndarray
    slice_index: np.ndarray
    cases: tuple[CaseInfo, ...]
    label_names: dict[int, str]
    channel_names: tuple[str, ...]
    _ranges: dict[str, tuple[int, int]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        n = len(self.images)
        if not (len(self.labels) == len(self.case_index) == len(self.slice_index) == n):
            raise ValueError("images, labels, case_index and slice_index differ in length")
        if self.images.ndim != 4 or self.labels.ndim != 3:
            raise ValueError("images must be (N, C, H, W) and labels (N, H, W)")
        ranges: dict[str, tuple[int, int]] = {}
        for i, case in enumerate(self.cases):
            idx = np.flatnonzero(self.case_index == i)
            if len(idx) == 0:
                raise ValueError(f"case {case.case_id} has no slices")
            if idx[-1] - idx[0] + 1 != len(idx):
                raise ValueError(f"slices of case {case.case_id} are not contiguous")
            ranges[case.case_id] = (int(idx[0]), int(idx[-1]) + 1)
        object.__setattr__(self, "_ranges", ranges)

    @property
    def n_classes(self) -> int:
        """Number of classes, background included."""
        return len(self.label_names)

    @property
    def in_channels(self) -> int:
        return int(self.images.shape[1])

    @property
    def case_ids(self) -> tuple[str, ...]:
        return tuple(c.case_id for c in self.cases)

    def case_slices(self, case_id: str) -> slice:
        """The slice range of one case, in slice order."""
        start, stop = self._ranges[case_id]
        return slice(start, stop)

    def subset(self, case_ids: Iterable[str]) -> SliceData:
        """The slices of the named cases only, in the order given."""
        wanted = list(case_ids)
        missing = [c for c in wanted if c not in self._ranges]
        if missing:
            raise DatasetError(f"cases not in the preprocessed data: {', '.join(missing)}")
        parts = [self.case_slices(c) for c in wanted]
        pos = {c.case_id: i for i, c in enumerate(self.cases)}
        new_index = np.concatenate(
            [np.full(p.stop - p.start, k, dtype=np.int32) for k, p in enumerate(parts)]
        )
        return SliceData(
            images=np.concatenate([self.images[p] for p in parts]),
            labels=np.concatenate([self.labels[p] for p in parts]),
            case_index=new_index,
            slice_index=np.concatenate([self.slice_index[p] for p in parts]),
            cases=tuple(self.cases[pos[c]] for c in wanted),
            label_names=dict(self.label_names),
            channel_names=self.channel_names,
        )

    def save(self, folder: str | Path) -> None:
        """Write ``slices.npz`` and ``slices.json`` into ``folder``, each atomically."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        meta = {
            "cases": [
                {"case_id": c.case_id, "spacing": list(c.spacing), "site": c.site,
                 **({"crop": list(c.crop)} if c.crop is not None else {}),
                 **({"foreground": list(c.foreground)} if c.foreground is not None else {}),
                 **({"extent_mm": c.extent_mm} if c.extent_mm is not None else {})}
                for c in self.cases
            ],
            "label_names": {str(k): v for k, v in self.label_names.items()},
            "channel_names": list(self.channel_names),
        }
        atomic_write(
            folder / "slices.npz",
            lambda f: np.savez(
                f,
                images=self.images,
                labels=self.labels,
                case_index=self.case_index,
                slice_index=self.slice_index,
            ),
        )
        atomic_write(folder / "slices.json", lambda f: f.write(json.dumps(meta).encode()))

    @classmethod
    def load(cls, folder: str | Path) -> SliceData:
        """Read what :meth:`save` wrote."""
        folder = Path(folder)
        try:
            meta = json.loads((folder / "slices.json").read_text())
            with np.load(folder / "slices.npz") as z:
                arrays = {k: z[k] for k in ("images", "labels", "case_index", "slice_index")}
        except (OSError, ValueError, KeyError) as exc:
            raise DatasetError(
                f"{folder}: not a readable preprocessed dataset ({exc}); "
                "run `mbnas preprocess` again"
            ) from exc
        return cls(
            cases=tuple(
                CaseInfo(c["case_id"], _spacing3(c["spacing"]), c.get("site"),
                         _pair(c.get("crop")), _pair(c.get("foreground")),
                         c.get("extent_mm"))
                for c in meta["cases"]
            ),
            label_names={int(k): v for k, v in meta["label_names"].items()},
            channel_names=tuple(meta["channel_names"]),
            **arrays,
        )



def _pair(value: object) -> tuple[int, int] | None:
    return None if value is None else (int(value[0]), int(value[1]))  # type: ignore[index]


def _spacing3(values: Any) -> tuple[float, float, float]:
    """A stored (x, y, z) spacing as three floats."""
    x, y, z = (float(s) for s in values)
    return x, y, z
