"""Integrity checks of a dataset: every problem at once, one line per file and problem.

:func:`check_dataset` is what `mbnas check` runs. :func:`load_case` is shared with the
preprocessor, so a dataset that fails the check is refused for training with the same
messages. Beyond nnU-Net's ``verify_dataset_integrity``, this also finds Inf values,
duplicate case ids, stray files, non-integer labels and paths leaving the dataset folder.
"""

from __future__ import annotations

import gzip
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mbnas.data.formats import CaseFiles, Dataset, scan_dataset
from mbnas.data.problems import Problem, error, raise_if_errors, warning
from mbnas.progress import track

# Largest image read (voxels, all channels): 4x a 512 x 512 x 1024 CT.
MAX_VOXELS = 1 << 30
# Deflate cannot compress more than 1032:1, so a .nii.gz file of n bytes holds at most
# about this many times n bytes of image.
_MAX_GZIP_RATIO = 1100

# Tolerances for comparing an image's geometry with its label's (mm).
_SPACING_RTOL = 1e-4
_AFFINE_ATOL = 1e-3


@dataclass(frozen=True)
class Volume:
    """One case's arrays as stored on disk (before reorientation).

    Attributes:
        image: (X, Y, Z, C) array in the file's data type, channels last.
        label: (X, Y, Z) uint8 class ids.
        affine: The image's voxel -> world (mm) affine.
    """

    image: np.ndarray
    label: np.ndarray
    affine: np.ndarray


def check_dataset(data_dir: str | Path) -> list[Problem]:
    """Validate a dataset folder, returning every problem found (never raising).

    Args:
        data_dir: An MSD v1 or nnU-Net v2 dataset folder.

    Returns:
        Errors (the dataset cannot be used) and warnings, in the order: dataset.json
        and folder listing, then case by case.
    """
    dataset, problems = scan_dataset(data_dir)
    if dataset is None:
        return problems
    with track(f"checking {dataset.name}", total=len(dataset.cases), unit="case") as step:
        for case in step.each(dataset.cases, lambda c: c.case_id):
            try:
                problems += load_case(dataset, case)[1]
            except Exception as exc:  # noqa: BLE001 - a checker must report, never crash
                problems.append(error(case.label, "unexpected failure while checking case "
                                      f"'{case.case_id}': {type(exc).__name__}: {exc}"))
    return problems


def require_valid(data_dir: str | Path) -> Dataset:
    """Read and fully check a dataset; raise DatasetError listing every error."""
    problems = check_dataset(data_dir)
    raise_if_errors(data_dir, problems)
    dataset, _ = scan_dataset(data_dir)
    assert dataset is not None
    return dataset


def load_case(dataset: Dataset, case: CaseFiles) -> tuple[Volume | None, list[Problem]]:
    """Load one case and check it; the volume is None when an error was found.

    Args:
        dataset: The dataset the case belongs to (channels and labels declared).
        case: The case to load.

    Returns:
        The arrays (only if there were no errors) and the problems found.
    """
    problems: list[Problem] = []
    image, affine = _load_image(dataset, case, problems)
    label = _load_label(case.label, problems)
    if image is None or label is None:
        return None, problems
    label_arr, label_affine = label
    first = case.images[0]
    _compare_geometry(first, image.shape[:3], affine, case.label, label_arr.shape,
                      label_affine, problems)
    if image.dtype.kind not in "iubf":
        problems.append(error(first, f"image data type {image.dtype} is not a real number type"))
    elif image.dtype.kind == "f":
        # One file holds all channels (MSD) or each channel has its own file (nnU-Net).
        groups = [(first, image)] if len(case.images) == 1 else [
            (path, image[..., c]) for c, path in enumerate(case.images)]
        for path, arr in groups:
            n_nan, n_inf = int(np.isnan(arr).sum()), int(np.isinf(arr).sum())
            if n_nan or n_inf:
                problems.append(error(path, f"image contains {n_nan} NaN and {n_inf} Inf "
                                            "value(s); replace them before training"))
    label_u8 = _check_label_values(case.label, label_arr, dataset.label_names, problems)
    if label_u8 is None or any(p.is_error for p in problems):
        return None, problems
    return Volume(image, label_u8, affine), problems


def voxel_sizes(affine: np.ndarray) -> np.ndarray:
    """Voxel size in mm along each voxel axis, from the affine."""
    return np.sqrt((np.asarray(affine)[:3, :3] ** 2).sum(axis=0))


def declared_size_problem(path: Path, img: Any) -> str | None:
    """Why a NIfTI file cannot hold the image its header declares (None: it can), found
    before its data is read, so a lying header allocates nothing."""
    shape = tuple(int(n) for n in img.shape)
    voxels = int(np.prod(shape, dtype=object))
    nbytes = voxels * np.dtype(img.get_data_dtype()).itemsize
    size = path.stat().st_size
    if voxels > MAX_VOXELS:
        return (f"its header declares {' x '.join(map(str, shape))} = {voxels:,} voxels; at "
                f"most {MAX_VOXELS:,} are read")
    offset = int(img.header["vox_offset"])
    if path.name.endswith(".gz"):
        if nbytes > _MAX_GZIP_RATIO * size + 1_000_000:
            return (f"its header declares {' x '.join(map(str, shape))} voxels ({nbytes:,} "
                    f"bytes), more than a {size:,}-byte compressed file can hold: truncated, "
                    "or a wrong header")
    elif size < offset + nbytes:
        return (f"its header declares {' x '.join(map(str, shape))} voxels ({nbytes:,} bytes)"
                f" but the file holds {max(size - offset, 0):,}: truncated, or a wrong header")
    return None


def _read(path: Path, problems: list[Problem]) -> tuple[np.ndarray, np.ndarray] | None:
    """Read a NIfTI file fully; report any failure as a problem instead of raising."""
    import nibabel as nib  # here: `mbnas --help` imports this module, not nibabel

    try:
        img = nib.load(path)
        if not isinstance(img, nib.Nifti1Image):
            problems.append(error(path, f"not a NIfTI image ({type(img).__name__})"))
            return None
        bomb = declared_size_problem(path, img)
        if bomb is not None:
            problems.append(error(path, bomb))
            return None
        arr = np.asanyarray(img.dataobj)
        affine = np.asarray(img.affine, dtype=np.float64)
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        problems.append(error(path, f"truncated or corrupt compressed file ({exc})"))
        return None
    except Exception as exc:  # noqa: BLE001 - nibabel raises many types for garbage input
        problems.append(error(path, f"cannot be read as NIfTI ({type(exc).__name__}: {exc})"))
        return None
    sizes = voxel_sizes(affine)
    if not np.all(np.isfinite(affine)) or np.any(sizes <= 0):
        problems.append(error(path, f"invalid geometry: voxel sizes {sizes.round(4).tolist()} "
                                    "from the affine (must be finite and positive)"))
        return None
    return arr, affine


def _spatial(path: Path, arr: np.ndarray, problems: list[Problem], what: str) -> np.ndarray | None:
    """The array as 3D (a trailing singleton 4th axis is dropped), or a problem."""
    if arr.ndim == 4 and arr.shape[3] == 1:
        arr = arr[..., 0]
    if arr.ndim == 3:
        return arr
    if arr.ndim < 3:
        problems.append(error(path, f"is {arr.ndim}D (shape {arr.shape}); 3D {what} volumes "
                                    "are expected"))
    else:
        problems.append(error(path, f"has shape {arr.shape}; a 3D {what} volume is expected"))
    return None


def _load_image(dataset: Dataset, case: CaseFiles,
                problems: list[Problem]) -> tuple[np.ndarray | None, np.ndarray]:
    n = dataset.n_channels
    names = ", ".join(dataset.channel_names)
    if dataset.format == "msd":
        path = case.images[0]
        read = _read(path, problems)
        if read is None:
            return None, np.eye(4)
        arr, affine = read
        if arr.ndim < 3:
            problems.append(error(path, f"is {arr.ndim}D (shape {arr.shape}); 3D volumes "
                                        "are expected"))
            return None, affine
        channels = 1 if arr.ndim == 3 else arr.shape[3] if arr.ndim == 4 else -1
        if arr.ndim > 4 or channels != n:
            problems.append(error(path, f"wrong number of channels: shape {arr.shape} holds "
                                        f"{channels if channels > 0 else 'an unknown number of'} "
                                        f"channel(s) but dataset.json declares {n} ({names})"))
            return None, affine
        return (arr[..., None] if arr.ndim == 3 else arr), affine
    parts: list[np.ndarray] = []
    affine = np.eye(4)
    for i, path in enumerate(case.images):
        read = _read(path, problems)
        if read is None:
            continue
        arr = _spatial(path, read[0], problems, "image")
        if arr is None:
            continue
        if i == 0:
            affine = read[1]
        elif parts:
            _compare_geometry(case.images[0], parts[0].shape, affine, path, arr.shape, read[1],
                              problems, other="channel 0")
        parts.append(arr)
    if len(parts) != n or any(p.is_error for p in problems):
        return None, affine
    # A single channel stays a view; several are stacked (channels last, as in MSD).
    image = parts[0][..., None] if n == 1 else np.stack(parts, axis=-1)
    return image, affine


def _load_label(path: Path, problems: list[Problem]) -> tuple[np.ndarray, np.ndarray] | None:
    read = _read(path, problems)
    if read is None:
        return None
    arr = _spatial(path, read[0], problems, "label")
    return None if arr is None else (arr, read[1])


def _compare_geometry(ref_path: Path, ref_shape: tuple[int, ...], ref_affine: np.ndarray,
                      path: Path, shape: tuple[int, ...], affine: np.ndarray,
                      problems: list[Problem], other: str = "its image") -> None:
    if tuple(shape) != tuple(ref_shape):
        problems.append(error(path, f"shape {tuple(shape)} differs from {other}'s "
                                    f"{tuple(ref_shape)} ({ref_path.name})"))
        return
    ref_sizes, sizes = voxel_sizes(ref_affine), voxel_sizes(affine)
    if not np.allclose(sizes, ref_sizes, rtol=_SPACING_RTOL, atol=1e-6):
        problems.append(error(path, f"spacing {sizes.round(4).tolist()} mm differs from "
                                    f"{other}'s {ref_sizes.round(4).tolist()} mm "
                                    f"({ref_path.name})"))
    elif not np.allclose(affine, ref_affine, atol=_AFFINE_ATOL):
        problems.append(warning(path, f"affine (orientation/origin) differs from {other}'s "
                                      f"({ref_path.name}); {other}'s geometry is used"))


def _check_label_values(path: Path, label: np.ndarray, label_names: dict[int, str],
                        problems: list[Problem]) -> np.ndarray | None:
    """Check class ids; return the label as uint8, or None after an error."""
    declared = ", ".join(str(i) for i in label_names)
    if label.dtype.kind == "f":
        if not np.isfinite(label).all():
            problems.append(error(path, "label contains NaN or Inf values"))
            return None
        frac = label != np.round(label)
        if frac.any():
            example = float(label[frac].flat[0])
            problems.append(error(path, f"non-integer label values (e.g. {example:g}, "
                                        f"{int(frac.sum())} voxels); labels must be class ids "
                                        f"({declared})"))
            return None
    elif label.dtype.kind not in "iub":
        problems.append(error(path, f"label data type {label.dtype} is not numeric"))
        return None
    lo, hi = label.min(), label.max()
    if lo >= 0 and hi <= 255:
        as_u8 = label.astype(np.uint8, copy=False)
        values = np.flatnonzero(np.bincount(as_u8.ravel(), minlength=256))
    else:
        as_u8 = None
        values = np.unique(label)
    undeclared = sorted(int(v) for v in values if int(v) not in label_names)
    if undeclared:
        shown = ", ".join(map(str, undeclared[:10])) + (" ..." if len(undeclared) > 10 else "")
        problems.append(error(path, f"label values {shown} are not declared in dataset.json "
                                    f"labels ({declared})"))
        return None
    if len(values) == 1 and values[0] == 0:
        problems.append(warning(path, "label contains only background (0); this case has no "
                                      "foreground to learn from"))
    return as_u8


def dataset_summary(dataset: Dataset) -> list[str]:
    """A one-screen summary: cases, channels, labels, and the ranges of voxel spacing and
    size over the cases (read from the image headers only, no voxel data)."""
    import nibabel as nib

    shapes, spacings = [], []
    for case in dataset.cases:
        try:
            img = nib.load(str(case.images[0]))
        except Exception:  # noqa: BLE001 - the checks above reported an unreadable file
            continue
        shapes.append(tuple(int(s) for s in img.shape[:3]))
        spacings.append(tuple(float(z) for z in voxel_sizes(img.affine)[:3]))

    labels = ", ".join(f"{k} {v}" for k, v in sorted(dataset.label_names.items()))
    return [f"dataset {dataset.name} ({dataset.format}): {len(dataset.cases)} training "
            "case(s)",
            f"channels: {', '.join(dataset.channel_names)}",
            f"labels: {labels}",
            f"spacing (mm): {_span(spacings, '.3g')}",
            f"size (voxels): {_span(shapes, 'd')}"]


def _span(values: list[tuple], fmt: str) -> str:
    """``64 x 64 x 14-24``: each axis's range over the cases."""
    if not values:
        return "not readable"
    out = []
    for i in range(3):
        lo, hi = min(v[i] for v in values), max(v[i] for v in values)
        out.append(format(lo, fmt) if lo == hi else f"{lo:{fmt}}-{hi:{fmt}}")
    return " x ".join(out)
