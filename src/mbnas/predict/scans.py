"""Reading the scans `mbnas predict` segments, and writing its label files.

What is accepted:

* one NIfTI file (``.nii`` or ``.nii.gz``): a 3D volume for a one-channel model, or a
  4D volume with the channels on the last axis (MSD style, e.g. T2 and ADC);
* a folder of such files, one scan per file;
* a folder of nnU-Net style channel files, ``CASE_0000.nii.gz``, ``CASE_0001.nii.gz``...
  (one 3D file per channel, in channel order): used when every NIfTI name in the folder
  ends in ``_`` and four digits and every case has a ``_0000`` file.

Other files in a folder are ignored and sub-folders are not searched. The label file of a
scan is ``<name>.nii.gz`` (the input's name without ``.nii(.gz)``, or the nnU-Net case
id), a uint8 volume with the scan's affine and header.
"""

from __future__ import annotations

import gzip
import re
import zlib
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np

from mbnas.data.check import declared_size_problem, voxel_sizes
from mbnas.errors import ConfigError, MbnasError
from mbnas.io import atomic_write

_NNUNET = re.compile(r"^(?P<case>.+)_(?P<channel>\d{4})$")
_SPACING_RTOL = 1e-4


class ScanError(MbnasError):
    """A scan that cannot be segmented; the message names the file."""


@dataclass(frozen=True)
class ScanFiles:
    """The files of one scan to segment.

    Attributes:
        name: Base name of the label file written (``<name>.nii.gz``).
        files: One file (3D, or 4D with channels last) or one 3D file per channel.
    """

    name: str
    files: tuple[Path, ...]


@dataclass(frozen=True)
class Scan:
    """A scan read into memory.

    Attributes:
        image: (X, Y, Z, C) array as stored (channels last), before reorientation.
        affine: Voxel -> world (mm) affine of the scan (of channel 0 for nnU-Net files).
        header: The NIfTI header the label file copies.
    """

    image: np.ndarray
    affine: np.ndarray
    header: nib.Nifti1Header


def nifti_stem(path: Path) -> str | None:
    """The file name without ``.nii`` or ``.nii.gz``, or None for other files."""
    name = path.name
    for ext in (".nii.gz", ".nii"):
        if name.endswith(ext) and len(name) > len(ext):
            return name[: -len(ext)]
    return None


def find_scans(path: str | Path) -> list[ScanFiles]:
    """The scans in a file or folder, in name order (see the module docstring).

    Raises:
        ConfigError: If the path does not exist, is not a NIfTI file, holds no NIfTI
            file, or two scans would write the same label file.
    """
    path = Path(path)
    if path.is_file():
        stem = nifti_stem(path)
        if stem is None:
            raise ScanError(f"{path}: not a NIfTI file (expected .nii or .nii.gz)")
        return [ScanFiles(stem, (path,))]
    if not path.is_dir():
        raise ConfigError(f"input {path} does not exist")
    files = sorted(p for p in path.iterdir()
                   if p.is_file() and not p.name.startswith(".") and nifti_stem(p))
    if not files:
        raise ConfigError(f"input folder {path} holds no NIfTI file (.nii or .nii.gz)")
    stems = [nifti_stem(p) or "" for p in files]
    matches = [_NNUNET.match(s) for s in stems]
    groups: dict[str, dict[int, Path]] = {}
    for match, file in zip(matches, files):
        if match is not None:
            groups.setdefault(match["case"], {})[int(match["channel"])] = file
    nnunet = all(matches) and all(0 in g for g in groups.values())
    if nnunet:
        scans = [ScanFiles(case, tuple(g[k] for k in sorted(g)))
                 for case, g in sorted(groups.items())]
    else:
        scans = [ScanFiles(s, (f,)) for s, f in zip(stems, files)]
    seen: dict[str, Path] = {}
    for scan in scans:
        if scan.name in seen:
            raise ConfigError(f"{seen[scan.name]} and {scan.files[0]} would both be "
                              f"segmented into {scan.name}.nii.gz; rename one of them")
        seen[scan.name] = scan.files[0]
    return scans


def read_scan(scan: ScanFiles, channel_names: tuple[str, ...]) -> Scan:
    """Read a scan fully and check it has the model's channels and a 3D geometry.

    Raises:
        ScanError: naming the file: unreadable or truncated, not 3D, the wrong number of
            channels, invalid geometry, or NaN/Inf values.
    """
    n = len(channel_names)
    expects = f"the model expects {n} channel(s) ({', '.join(channel_names)})"
    if len(scan.files) == 1 and not _is_channel_file(scan):
        path = scan.files[0]
        arr, img = _read(path)
        if arr.ndim < 3 or arr.ndim > 4:
            raise ScanError(f"{path}: is {arr.ndim}D (shape {arr.shape}); a 3D scan, or "
                            "4D with the channels on the last axis, is expected")
        image = arr[..., None] if arr.ndim == 3 else arr
        if image.shape[3] != n:
            hint = ("; give a 4D file with the channels on the last axis, or a folder of "
                    "CASE_0000.nii.gz, CASE_0001.nii.gz... files" if image.shape[3] == 1 else "")
            raise ScanError(f"{path}: wrong number of channels: shape {arr.shape} holds "
                            f"{image.shape[3]} channel(s) but {expects}{hint}")
        _check_values(path, image)
        return Scan(image, np.asarray(img.affine, dtype=np.float64), img.header)
    numbers = [int(_NNUNET.match(nifti_stem(p) or "")["channel"]) for p in scan.files]
    if numbers != list(range(n)):
        listed = ", ".join(f"_{k:04d}" for k in numbers)
        raise ScanError(f"{scan.files[0].parent / scan.name}: channel files {listed} found "
                        f"but {expects}: _0000 to _{n - 1:04d}")
    parts: list[np.ndarray] = []
    first: nib.Nifti1Image | None = None
    for path in scan.files:
        arr, img = _read(path)
        if arr.ndim == 4 and arr.shape[3] == 1:
            arr = arr[..., 0]
        if arr.ndim != 3:
            raise ScanError(f"{path}: is {arr.ndim}D (shape {arr.shape}); each channel file "
                            "must be a 3D volume")
        if first is None:
            first = img
        else:
            _same_grid(scan.files[0], first, path, img, arr.shape)
        _check_values(path, arr)
        parts.append(arr)
    assert first is not None
    image = parts[0][..., None] if n == 1 else np.stack(parts, axis=-1)
    return Scan(image, np.asarray(first.affine, dtype=np.float64), first.header)


def write_label(label: np.ndarray, scan: Scan, path: Path) -> None:
    """Write a uint8 label volume with the scan's affine and header, atomically."""
    header = scan.header.copy()
    header.set_data_dtype(np.uint8)
    img = nib.Nifti1Image(np.asarray(label, dtype=np.uint8), scan.affine, header)
    img.header.set_slope_inter(1.0, 0.0)
    img.header["cal_min"], img.header["cal_max"] = 0, max(int(label.max(initial=0)), 1)
    img.header.set_intent("none")
    data = img.to_bytes()
    if path.name.endswith(".gz"):
        data = gzip.compress(data, compresslevel=1, mtime=0)
    atomic_write(path, lambda f: f.write(data))


def _is_channel_file(scan: ScanFiles) -> bool:
    """A scan from an nnU-Net folder (its name is the case id, not the file's stem)."""
    return nifti_stem(scan.files[0]) != scan.name


def _read(path: Path) -> tuple[np.ndarray, nib.Nifti1Image]:
    """Read a NIfTI file fully (so truncation is found now) and check its geometry."""
    try:
        img = nib.load(path)
        if not isinstance(img, nib.Nifti1Image):
            raise ScanError(f"{path}: not a NIfTI image ({type(img).__name__})")
        bomb = declared_size_problem(path, img)
        if bomb is not None:
            raise ScanError(f"{path}: {bomb}")
        arr = np.asanyarray(img.dataobj)
    except ScanError:
        raise
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise ScanError(f"{path}: truncated or corrupt compressed file ({exc})") from None
    except Exception as exc:  # noqa: BLE001 - nibabel raises many types for garbage input
        raise ScanError(f"{path}: cannot be read as NIfTI ({type(exc).__name__}: {exc})"
                        ) from None
    affine = np.asarray(img.affine, dtype=np.float64)
    sizes = voxel_sizes(affine)
    if not np.all(np.isfinite(affine)) or np.any(sizes <= 0):
        raise ScanError(f"{path}: invalid geometry: voxel sizes {sizes.round(4).tolist()} from "
                        "the affine (must be finite and positive)")
    if arr.dtype.kind not in "iubf":
        raise ScanError(f"{path}: image data type {arr.dtype} is not a real number type")
    if arr.size == 0:
        raise ScanError(f"{path}: holds no voxels (shape {arr.shape}); not a usable scan")
    return arr, img


_FLOAT32_MAX = float(np.finfo(np.float32).max)


def _check_values(path: Path, arr: np.ndarray) -> None:
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise ScanError(f"{path}: image contains NaN or Inf values; replace them first")
    # The network reads float32: values beyond it (e.g. an overflowing scl_slope) turn Inf.
    if arr.size and arr.dtype.kind in "iuf" and float(np.abs(arr).max()) > _FLOAT32_MAX:
        raise ScanError(f"{path}: intensities beyond float32 range (max |value| "
                        f"{float(np.abs(arr).max()):.3g}); check the header's scl_slope")


def _same_grid(ref: Path, ref_img: nib.Nifti1Image, path: Path, img: nib.Nifti1Image,
               shape: tuple[int, ...]) -> None:
    """Channel files must share channel 0's grid (its geometry is the one used)."""
    ref_shape = ref_img.shape[:3]
    if tuple(shape) != tuple(ref_shape):
        raise ScanError(f"{path}: shape {tuple(shape)} differs from channel 0's "
                        f"{tuple(ref_shape)} ({ref.name})")
    ref_sizes, sizes = voxel_sizes(ref_img.affine), voxel_sizes(img.affine)
    if not np.allclose(sizes, ref_sizes, rtol=_SPACING_RTOL, atol=1e-6):
        raise ScanError(f"{path}: spacing {sizes.round(4).tolist()} mm differs from channel "
                        f"0's {ref_sizes.round(4).tolist()} mm ({ref.name})")
