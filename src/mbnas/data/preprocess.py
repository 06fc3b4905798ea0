"""Turn a 3D dataset into the cached 2D slices the training engine reads.

Per case: reorient to the closest canonical (RAS) orientation, take every axial slice
(the last axis after reorientation), resize in-plane to ``size x size`` (linear for
images, nearest for labels) and normalise each channel:

* CT channels (nnU-Net's CT scheme): clip to the 0.5 and 99.5 percentiles of foreground
  intensities sampled over all training cases, then z-score with the foreground mean
  and standard deviation. Like nnU-Net, the statistics come from every training case
  (validation folds included) and ``ct_samples_per_case`` voxels are sampled per case,
  so memory does not grow with the dataset.
* Every other modality: z-scored per case (over all the case's resized voxels).

Axis order of the result: ``images[n, c, i, j]`` is voxel ``(i, j)`` of axial slice
``slice_index[n]`` of the RAS-canonical volume; rows (i) run along R (patient's left to
right), columns (j) along A (posterior to anterior), slices from inferior to superior.
``CaseInfo.spacing`` is (through-plane, row, column) in mm after resizing.

Cases are streamed one at a time into preallocated output arrays, so the peak memory is
the output plus one case. The result is cached under ``cache_dir/<key>/``, the key being
a hash of the input files (path, size, mtime) and the settings; ``preprocess.json`` is
written last and marks a complete cache.

The per-case steps (:func:`to_canonical` / :func:`from_canonical`, :func:`resize_slices`,
:func:`normalise_ct`, :func:`zscore`) are public so that `mbnas predict` prepares new
scans with the very same code.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import numbers
import os
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mbnas.data.cache_check import cache_checksums, cache_problem
from mbnas.data.check import Volume, load_case, voxel_sizes
from mbnas.data.cropped import check_cropped_labels, label_extent
from mbnas.data.formats import Dataset, read_dataset
from mbnas.data.normalise import normalise_case, normalise_ct, resolve_schemes
from mbnas.data.orientation import to_canonical
from mbnas.data.problems import Problem, raise_if_errors
from mbnas.data.slices import CaseInfo, SliceData
from mbnas.data.spacing import crop_or_pad, foreground_start, spacing_grid
from mbnas.errors import ConfigError, DatasetError
from mbnas.io import atomic_write_json
from mbnas.progress import track

# Bump when the preprocessing computes something different, so old caches are not reused.
PREPROCESS_VERSION = 1
# Slices resized per call: bounds the float32 copy of a large CT volume.
_CHUNK = 32
AXES_DOC = ("images (N, C, H, W): H along R (left to right), W along A (posterior to "
            "anterior) of the RAS-canonical volume; slices inferior to superior")


Log = Callable[[str], None]


@dataclass(frozen=True)
class PreprocessConfig:
    """Preprocessing settings; all of them are part of the cache key.

    Attributes:
        size: In-plane size of every slice after resizing (the paper uses 128).
        ct_clip_percentiles: Foreground-intensity percentiles CT channels are clipped to.
        ct_samples_per_case: Foreground voxels sampled per case for the CT statistics.
        sample_seed: Seed of the foreground voxel sampling.
        normalisation: Scheme per channel, or one for all (``mbnas.data.normalise``);
            empty: the default (CT scheme for CT channels, z-score for the others).
        target_spacing: In-plane spacing (mm) to resample every slice to, before it is
            cropped or padded (with the case's lowest value, label 0) to ``size``; the
            window is the centred one moved as little as needed to hold the case's
            labelled voxels (:func:`mbnas.data.spacing.foreground_start`); the voxels a
            window still drops are counted per case (``CaseInfo.foreground``); 0: resize
            every slice to ``size`` whatever its field of view (the paper).
    """

    size: int = 128
    ct_clip_percentiles: tuple[float, float] = (0.5, 99.5)
    ct_samples_per_case: int = 10_000
    sample_seed: int = 1234
    normalisation: tuple[str, ...] = ()
    target_spacing: float = 0.0

    def __post_init__(self) -> None:
        if not 0 <= self.target_spacing <= 100:
            raise ConfigError("target_spacing must be 0 (fit to size) or a spacing in mm up "
                              f"to 100, got {self.target_spacing}")
        object.__setattr__(self, "target_spacing", float(self.target_spacing))
        if isinstance(self.size, bool) or not isinstance(self.size, numbers.Integral) \
                or self.size < 8:
            raise ConfigError(f"preprocessing size must be an integer >= 8, got {self.size!r}")
        object.__setattr__(self, "size", int(self.size))
        lo, hi = self.ct_clip_percentiles
        if not 0.0 <= lo < hi <= 100.0:
            raise ConfigError("ct_clip_percentiles must satisfy 0 <= low < high <= 100, "
                              f"got {self.ct_clip_percentiles}")
        if self.ct_samples_per_case < 1:
            raise ConfigError(f"ct_samples_per_case must be >= 1, got {self.ct_samples_per_case}")
        object.__setattr__(self, "ct_clip_percentiles", (float(lo), float(hi)))


def load_slices(data_dir: str | Path, cache_dir: str | Path,
                config: PreprocessConfig | None = None, log: Log | None = None,
                allow_cropped_labels: bool = False) -> SliceData:
    """Preprocess the dataset when its cache is missing or stale, then load the slices.

    Args:
        allow_cropped_labels: Go on (with a warning) when a case loses all of its labelled
            voxels to the ``target_spacing`` window.

    Raises:
        DatasetError: listing every error when the dataset is broken, or naming a case
            whose labels the window drops entirely (unless ``allow_cropped_labels``).
    """
    data = SliceData.load(preprocess(data_dir, cache_dir, config, log))
    check_cropped_labels(data, config or PreprocessConfig(), allow_cropped_labels, log)
    return data


def preprocess(data_dir: str | Path, cache_dir: str | Path,
               config: PreprocessConfig | None = None, log: Log | None = None) -> Path:
    """Preprocess a dataset into ``cache_dir/<key>/``, reusing a complete cache.

    Args:
        data_dir: An MSD v1 or nnU-Net v2 dataset folder.
        cache_dir: Folder holding one subfolder per (inputs, settings) key.
        config: Settings; defaults to :class:`PreprocessConfig` ().
        log: Called with one progress line per case, if given.

    Returns:
        The folder holding ``slices.npz``, ``slices.json`` and ``preprocess.json``.

    Raises:
        DatasetError: listing every error when the dataset is broken (the same messages
            as `mbnas check`); nothing is written then.
    """
    config = config or PreprocessConfig()
    dataset = read_dataset(data_dir)
    inputs = dataset_inputs(dataset)
    folder = _folder(cache_dir, config, inputs)
    if is_complete(folder):
        problem = cache_problem(folder)
        if problem is None:
            return folder
        warnings.warn(f"{folder}: broken preprocessing cache entry ({problem}); rebuilding it",
                      RuntimeWarning, stacklevel=2)
        (folder / "preprocess.json").unlink()
    say = log or (lambda _msg: None)
    data, stats, problems = _run(dataset, config, say)
    data.save(folder)
    atomic_write_json(folder / "preprocess.json", {
        "mbnas_preprocess_version": PREPROCESS_VERSION,
        "created_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "config": asdict(config),
        "dataset": {
            "root": str(dataset.root.resolve()), "format": dataset.format,
            "name": dataset.name, "channel_names": list(dataset.channel_names),
            "ct_channels": list(dataset.ct_channels),
            "label_names": {str(k): v for k, v in dataset.label_names.items()},
        },
        "statistics": stats,
        "axes": AXES_DOC,
        "inputs": inputs,
        "warnings": [str(p) for p in problems if not p.is_error],
        "checksums": cache_checksums(folder),
    })
    return folder


def cache_folder(dataset: Dataset, cache_dir: str | Path, config: PreprocessConfig) -> Path:
    """The cache subfolder for this dataset's current files and these settings."""
    return _folder(cache_dir, config, dataset_inputs(dataset))


def _folder(cache_dir: str | Path, config: PreprocessConfig,
            inputs: list[dict[str, Any]]) -> Path:
    settings = asdict(config)
    if not config.normalisation:  # the default: the key of caches made before the choice
        settings.pop("normalisation")
    if not config.target_spacing:  # likewise
        settings.pop("target_spacing")
    else:  # the window follows the labels (issue 35); centre-cropped caches are not reused
        settings["crop"] = "foreground"
    blob = json.dumps({"version": PREPROCESS_VERSION, "config": settings,
                       "inputs": inputs}, sort_keys=True)
    return Path(cache_dir) / hashlib.sha256(blob.encode()).hexdigest()[:16]


def is_complete(folder: Path) -> bool:
    """Whether a cache folder holds a finished preprocessing run."""
    return all((folder / n).is_file() for n in ("preprocess.json", "slices.npz", "slices.json"))


def dataset_inputs(dataset: Dataset) -> list[dict[str, Any]]:
    files = [dataset.json_path]
    for case in dataset.cases:
        files += [*case.images, case.label]
    out = []
    for path in files:
        try:
            st = os.stat(path)
        except OSError as exc:
            raise DatasetError(f"{path}: cannot be read ({exc.strerror})") from exc
        out.append({"path": str(Path(path).resolve()), "size": st.st_size,
                    "mtime_ns": st.st_mtime_ns})
    return out


def _canonical_slices(path: Path) -> int:
    """Number of axial slices after reorientation, from the header only (0 if unreadable)."""
    import nibabel as nib  # here: keeps `mbnas --help` light

    try:
        img: Any = nib.load(path)
        axis = int(np.flatnonzero(nib.orientations.io_orientation(img.affine)[:, 0] == 2)[0])
        return int(img.shape[axis])
    except Exception:
        return 0


def count_slices(dataset: Dataset) -> int:
    """The axial slices preprocessing will make of every case, from the headers alone
    (no image is read): what ``--estimate`` scales its timings by."""
    return sum(_canonical_slices(case.images[0]) for case in dataset.cases)


def _run(dataset: Dataset, config: PreprocessConfig,
         say: Log) -> tuple[SliceData, dict[str, Any], list[Problem]]:
    size, n_ch = config.size, dataset.n_channels
    counts = [_canonical_slices(case.images[0]) for case in dataset.cases]
    total = sum(counts)
    images = np.empty((total, n_ch, size, size), np.float32)
    labels = np.empty((total, size, size), np.uint8)
    case_index = np.empty(total, np.int32)
    slice_index = np.empty(total, np.int32)
    schemes = resolve_schemes(config.normalisation, dataset.ct_channels)
    ct = [c for c, scheme in enumerate(schemes) if scheme == "ct"]
    samples: dict[int, list[np.ndarray]] = {c: [] for c in ct}
    rng = np.random.default_rng(config.sample_seed)
    problems: list[Problem] = []
    infos: list[CaseInfo] = []
    start = 0
    with track(f"preprocessing {dataset.name}", total=len(dataset.cases), unit="case") as step:
        for k, case in enumerate(step.each(dataset.cases, lambda c: c.case_id)):
            volume, found = load_case(dataset, case)
            problems += found
            if volume is None or any(p.is_error for p in problems):
                continue  # keep checking the other cases so every error is listed
            image, label, voxel = _canonical(volume)
            if label.shape[2] != counts[k]:
                raise DatasetError(f"{case.images[0]}: header and data disagree on the number of "
                                   f"slices ({counts[k]} vs {label.shape[2]}); the file may be "
                                   "corrupt")
            # Sampled after reorientation, so the statistics do not depend on the stored order.
            fg_mask = label > 0
            for c in ct:
                fg = image[..., c][fg_mask]
                if fg.size:
                    n = config.ct_samples_per_case
                    samples[c].append(rng.choice(fg, n, replace=True).astype(np.float64))
                del fg
            del fg_mask
            stop = start + counts[k]
            x, y = label.shape[:2]
            if config.target_spacing:
                grid = spacing_grid((x, y), voxel[:2], config.target_spacing)
                resampled = (np.empty((stop - start, n_ch, *grid), np.float32),
                             np.empty((stop - start, *grid), np.uint8))
                _resize_into(image, label, *resampled)
                window = foreground_start(resampled[1], (size, size))
                crop_or_pad(resampled[0], images[start:stop], resampled[0].min(axis=(0, 2, 3)),
                            window)
                crop_or_pad(resampled[1], labels[start:stop], np.zeros(1), window)
                spacing = (voxel[2], config.target_spacing, config.target_spacing)
                extra: dict[str, Any] = {"crop": window,
                         "foreground": (int(np.count_nonzero(labels[start:stop])),
                                        int(np.count_nonzero(resampled[1]))),
                         "extent_mm": label_extent(resampled[1]) * config.target_spacing}
                del resampled
            else:
                _resize_into(image, label, images[start:stop], labels[start:stop])
                spacing = (voxel[2], voxel[0] * x / size, voxel[1] * y / size)
                extra = {}
            for c in range(n_ch):
                if c not in ct:
                    normalise_case(images[start:stop, c], schemes[c])
            case_index[start:stop] = len(infos)
            slice_index[start:stop] = np.arange(stop - start)
            infos.append(CaseInfo(case.case_id, spacing, case.site, **extra))
            say(f"{case.case_id}: {stop - start} slices")
            start = stop
            del volume, image, label  # so that the next case's arrays replace, not add to, these
    raise_if_errors(dataset.root, problems)
    stats: dict[str, Any] = {"cases": len(infos), "slices": total, "shape": [n_ch, size, size],
                             "ct": {}}
    for c in ct:
        stats["ct"][dataset.channel_names[c]] = _normalise_ct(dataset, c, samples[c], images,
                                                               config.ct_clip_percentiles)
    data = SliceData(images=images, labels=labels, case_index=case_index,
                     slice_index=slice_index, cases=tuple(infos),
                     label_names=dict(dataset.label_names), channel_names=dataset.channel_names)
    return data, stats, problems


def _canonical(volume: Volume) -> tuple[np.ndarray, np.ndarray, tuple[float, float, float]]:
    """Image (X, Y, Z, C), label (X, Y, Z) and voxel size in the closest RAS orientation."""
    image, affine = to_canonical(volume.image, volume.affine)
    label, _ = to_canonical(volume.label, volume.affine)
    sx, sy, sz = (float(v) for v in voxel_sizes(affine))
    return image, label, (sx, sy, sz)


def _resize_into(image: np.ndarray, label: np.ndarray, out_images: np.ndarray,
                 out_labels: np.ndarray) -> None:
    """Resize every axial slice: bilinear (antialiased) for images, nearest for labels."""
    import torch
    import torch.nn.functional as F

    resize_slices(image, out_images)
    size = out_images.shape[-2:]
    for a in range(0, label.shape[2], _CHUNK):
        b = min(a + _CHUNK, label.shape[2])
        lab = np.ascontiguousarray(label[:, :, a:b].transpose(2, 0, 1)[:, None])
        out_labels[a:b] = F.interpolate(torch.from_numpy(lab), size=size,
                                        mode="nearest-exact").numpy()[:, 0]


def resize_slices(image: np.ndarray, out: np.ndarray) -> None:
    """Resize every axial slice of a canonical image to ``out``'s in-plane size.

    Bilinear with antialiasing, in float32, a chunk of slices at a time.

    Args:
        image: (X, Y, Z, C) canonical image, any real data type.
        out: (Z, C, H, W) float32 array receiving the resized slices.
    """
    import torch  # imported here so that `mbnas check` and the folds stay light
    import torch.nn.functional as F

    size = out.shape[-2:]
    for a in range(0, image.shape[2], _CHUNK):
        b = min(a + _CHUNK, image.shape[2])
        chunk = np.ascontiguousarray(image[:, :, a:b].transpose(2, 3, 0, 1), dtype=np.float32)
        out[a:b] = F.interpolate(torch.from_numpy(chunk), size=size, mode="bilinear",
                                 align_corners=False, antialias=True).numpy()


def _normalise_ct(dataset: Dataset, c: int, samples: list[np.ndarray], images: np.ndarray,
                  percentiles: tuple[float, float]) -> dict[str, float]:
    """Clip and z-score CT channel ``c`` of all slices in place; return the statistics."""
    if not samples:
        raise DatasetError(f"{dataset.root}: no label has any foreground voxel, so the CT "
                           f"normalisation of channel '{dataset.channel_names[c]}' cannot be "
                           "computed")
    values = np.concatenate(samples)
    lo, hi = (float(v) for v in np.percentile(values, percentiles))
    mean, std = float(values.mean()), float(values.std())
    for a in range(0, len(images), 256):
        normalise_ct(images[a:a + 256, c], (lo, hi), mean, std)
    return {"clip_low": lo, "clip_high": hi, "mean": mean, "std": std,
            "n_samples": int(values.size)}
