"""Whole volumes for 3D training: resampled to the target spacing, normalised, cached.

Per case, as nnU-Net preprocesses for ``3d_fullres``: reorient to the closest RAS
orientation (:func:`mbnas.data.orientation.to_canonical`), resample to the target
spacing (images trilinear, labels nearest), normalise each channel with the same
schemes as the 2D slices (:mod:`mbnas.data.normalise`; CT statistics from foreground
voxels sampled over every case) and write ``<case>_image.npy`` (C, X, Y, Z) float32,
``<case>_label.npy`` (X, Y, Z) uint8 and ``<case>_foreground.npy`` (up to
``FOREGROUND_SAMPLES`` foreground voxel positions, for oversampling). Training reads
them by memory map, so the dataset is never in memory as a whole.

The cache lives under ``cache_dir/<key>/`` (key: a hash of the input files and the
settings); ``volumes.json``, written last, marks a complete entry.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mbnas.data.check import load_case, voxel_sizes
from mbnas.data.formats import read_dataset
from mbnas.data.normalise import normalise_case, normalise_ct, resolve_schemes
from mbnas.data.orientation import to_canonical
from mbnas.data.preprocess import dataset_inputs
from mbnas.data.problems import raise_if_errors
from mbnas.data.slices import CaseInfo
from mbnas.errors import DatasetError
from mbnas.io import atomic_write, atomic_write_json
from mbnas.progress import track

VOLUMES_VERSION = 1
#: Foreground voxel positions kept per case for foreground oversampling.
FOREGROUND_SAMPLES = 10_000
Log = Callable[[str], None]


@dataclass(frozen=True)
class VolumePrepConfig:
    """Settings of volume preprocessing; all are part of the cache key.

    Attributes:
        spacing: Target voxel size (x, y, z) in mm.
        normalisation: Scheme per channel, or one for all; empty: the default.
        ct_clip_percentiles: Foreground percentiles CT channels are clipped to.
        ct_samples_per_case: Foreground voxels sampled per case for the CT statistics.
        sample_seed: Seed of that sampling and of the foreground positions kept.
    """

    spacing: tuple[float, float, float]
    normalisation: tuple[str, ...] = ()
    ct_clip_percentiles: tuple[float, float] = (0.5, 99.5)
    ct_samples_per_case: int = 10_000
    sample_seed: int = 1234


@dataclass(frozen=True)
class VolumeCase(CaseInfo):
    """A preprocessed case: ``spacing`` is the target (x, y, z) in mm; ``shape`` its
    resampled (X, Y, Z); ``original_shape`` and ``original_spacing`` the canonical grid
    before resampling (where predictions go back to)."""

    shape: tuple[int, int, int] = (0, 0, 0)
    original_shape: tuple[int, int, int] = (0, 0, 0)
    original_spacing: tuple[float, float, float] = (0.0, 0.0, 0.0)


@dataclass(frozen=True, eq=False)
class VolumeData:
    """The preprocessed volumes of a dataset (or of some of its cases), memory-mapped.

    The counterpart of :class:`~mbnas.data.slices.SliceData` for 3D: the same
    ``cases``, ``case_ids``, ``n_classes``, ``in_channels`` and ``subset``.
    """

    folder: Path
    cases: tuple[VolumeCase, ...]
    label_names: dict[int, str]
    channel_names: tuple[str, ...]
    statistics: dict[str, Any] = field(default_factory=dict)

    @property
    def n_classes(self) -> int:
        return len(self.label_names)

    @property
    def in_channels(self) -> int:
        return len(self.channel_names)

    @property
    def case_ids(self) -> tuple[str, ...]:
        return tuple(c.case_id for c in self.cases)

    def image(self, case_id: str) -> np.ndarray:
        """(C, X, Y, Z) float32, memory-mapped read-only."""
        return np.load(self.folder / f"{case_id}_image.npy", mmap_mode="r")

    def label(self, case_id: str) -> np.ndarray:
        """(X, Y, Z) uint8, memory-mapped read-only."""
        return np.load(self.folder / f"{case_id}_label.npy", mmap_mode="r")

    def foreground(self, case_id: str) -> np.ndarray:
        """(n, 3) sampled foreground voxel positions (n may be 0)."""
        return np.load(self.folder / f"{case_id}_foreground.npy")

    def subset(self, case_ids: Iterable[str]) -> VolumeData:
        by_id = {c.case_id: c for c in self.cases}
        wanted = list(case_ids)
        missing = [c for c in wanted if c not in by_id]
        if missing:
            raise DatasetError(f"cases not in the preprocessed volumes: {', '.join(missing)}")
        return VolumeData(self.folder, tuple(by_id[c] for c in wanted), dict(self.label_names),
                          self.channel_names, self.statistics)

    @classmethod
    def load(cls, folder: str | Path) -> VolumeData:
        folder = Path(folder)
        try:
            meta = json.loads((folder / "volumes.json").read_text())
        except (OSError, ValueError) as exc:
            raise DatasetError(f"{folder}: not a readable volume cache ({exc}); delete it "
                               "and run again") from exc
        cases = tuple(VolumeCase(c["case_id"], tuple(c["spacing"]), c.get("site"),
                                 shape=tuple(c["shape"]),
                                 original_shape=tuple(c["original_shape"]),
                                 original_spacing=tuple(c["original_spacing"]))
                      for c in meta["cases"])
        return cls(folder, cases, {int(k): v for k, v in meta["label_names"].items()},
                   tuple(meta["channel_names"]), meta.get("statistics", {}))


def load_volumes(data_dir: str | Path, cache_dir: str | Path, config: VolumePrepConfig,
                 log: Log | None = None) -> VolumeData:
    """Preprocess the dataset's volumes unless cached, then open them."""
    return VolumeData.load(preprocess_volumes(data_dir, cache_dir, config, log))


def preprocess_volumes(data_dir: str | Path, cache_dir: str | Path, config: VolumePrepConfig,
                       log: Log | None = None) -> Path:
    """Write the cache entry of the dataset's volumes at ``config`` (reused when complete).

    Raises:
        DatasetError: listing every error of a broken dataset (as `mbnas check` does).
    """
    dataset = read_dataset(data_dir)
    settings = asdict(config)
    blob = json.dumps({"version": VOLUMES_VERSION, "config": settings,
                       "inputs": dataset_inputs(dataset)}, sort_keys=True)
    folder = Path(cache_dir) / ("vol-" + hashlib.sha256(blob.encode()).hexdigest()[:16])
    if (folder / "volumes.json").is_file():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    say = log or (lambda _m: None)
    schemes = resolve_schemes(config.normalisation, dataset.ct_channels)
    ct = [c for c, s in enumerate(schemes) if s == "ct"]
    samples: dict[int, list[np.ndarray]] = {c: [] for c in ct}
    rng = np.random.default_rng(config.sample_seed)
    problems, cases = [], []
    with track(f"preprocessing {dataset.name} volumes", total=len(dataset.cases),
               unit="case") as step:
        for case in step.each(dataset.cases, lambda c: c.case_id):
            volume, found = load_case(dataset, case)
            problems += found
            if volume is None or any(p.is_error for p in problems):
                continue
            image, affine = to_canonical(volume.image, volume.affine)
            label, _ = to_canonical(volume.label, volume.affine)
            voxel = tuple(float(v) for v in voxel_sizes(affine))
            img = resample_image(image, voxel, config.spacing)
            lab = resample_label(label, img.shape[1:])
            fg_mask = lab > 0
            for c in ct:
                fg = img[c][fg_mask]
                if fg.size:
                    samples[c].append(rng.choice(fg, config.ct_samples_per_case).astype(float))
            for c, scheme in enumerate(schemes):
                if scheme != "ct":
                    normalise_case(img[c], scheme)
            fg_pos = np.argwhere(fg_mask)
            if len(fg_pos) > FOREGROUND_SAMPLES:
                fg_pos = fg_pos[np.sort(rng.choice(len(fg_pos), FOREGROUND_SAMPLES, False))]
            _save(folder / f"{case.case_id}_image.npy", img)
            _save(folder / f"{case.case_id}_label.npy", lab)
            _save(folder / f"{case.case_id}_foreground.npy", fg_pos.astype(np.int32))
            cases.append({"case_id": case.case_id, "spacing": list(config.spacing),
                          "site": case.site, "shape": list(lab.shape),
                          "original_shape": list(label.shape[:3]),
                          "original_spacing": list(voxel)})
            say(f"{case.case_id}: {tuple(label.shape[:3])} -> {tuple(lab.shape)}")
            del volume, image, label, img, lab, fg_mask
    raise_if_errors(dataset.root, problems)
    stats: dict[str, Any] = {"ct": {}}
    for c in ct:
        stats["ct"][dataset.channel_names[c]] = _normalise_ct(folder, cases, c, samples[c],
                                                              config.ct_clip_percentiles,
                                                              dataset.root)
    atomic_write_json(folder / "volumes.json", {
        "mbnas_volumes_version": VOLUMES_VERSION,
        "created_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "config": settings, "cases": cases, "statistics": stats,
        "label_names": {str(k): v for k, v in dataset.label_names.items()},
        "channel_names": list(dataset.channel_names),
        "ct_channels": list(dataset.ct_channels),
        "axes": "image (C, X, Y, Z), label (X, Y, Z): RAS-canonical voxel order",
    })
    return folder


def _save(path: Path, array: np.ndarray) -> None:
    atomic_write(path, lambda f: np.save(f, np.ascontiguousarray(array)))


def _normalise_ct(folder: Path, cases: list[dict[str, Any]], c: int, samples: list[np.ndarray],
                  percentiles: tuple[float, float], root: Path) -> dict[str, float]:
    if not samples:
        raise DatasetError(f"{root}: no label has any foreground voxel, so the CT "
                           "normalisation cannot be computed")
    values = np.concatenate(samples)
    lo, hi = (float(v) for v in np.percentile(values, percentiles))
    mean, std = float(values.mean()), float(values.std())
    for case in cases:  # in place through a writable memory map, one case at a time
        path = folder / f"{case['case_id']}_image.npy"
        img = np.load(path, mmap_mode="r+")
        normalise_ct(img[c], (lo, hi), mean, std)
        img.flush()
        del img
    return {"clip_low": lo, "clip_high": hi, "mean": mean, "std": std,
            "n_samples": int(values.size)}


def target_shape(shape: tuple[int, ...], voxel: tuple[float, ...],
                 spacing: tuple[float, ...]) -> tuple[int, int, int]:
    """Grid of a volume of ``shape`` and ``voxel`` size resampled to ``spacing``."""
    return tuple(max(1, round(n * v / s)) for n, v, s in  # type: ignore[return-value]
                 zip(shape[:3], voxel, spacing, strict=True))


def resample_image(image: np.ndarray, voxel: tuple[float, ...],
                   spacing: tuple[float, ...]) -> np.ndarray:
    """A canonical (X, Y, Z[, C]) image resampled (trilinear) to ``spacing``: (C, x, y, z)."""
    import torch
    import torch.nn.functional as F

    arr = image if image.ndim == 4 else image[..., None]
    size = target_shape(arr.shape, voxel, spacing)
    x = torch.from_numpy(np.ascontiguousarray(np.moveaxis(arr, -1, 0), dtype=np.float32))
    if tuple(x.shape[1:]) == size:
        return x.numpy().copy()
    return F.interpolate(x[None], size=size, mode="trilinear", align_corners=False)[0].numpy()


def resample_label(label: np.ndarray, size: tuple[int, ...]) -> np.ndarray:
    """A label volume (X, Y, Z) resampled to ``size`` with nearest neighbour, uint8."""
    import torch
    import torch.nn.functional as F

    if tuple(label.shape[:3]) == tuple(size):
        return np.ascontiguousarray(label, dtype=np.uint8)
    t = torch.from_numpy(np.ascontiguousarray(label, dtype=np.uint8))[None, None]
    return F.interpolate(t, size=tuple(size), mode="nearest-exact")[0, 0].numpy()
