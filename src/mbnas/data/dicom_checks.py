"""Checks of DICOM headers, series and structure sets for `mbnas import dicom-rt`.

Each finding is one line for the importer's problem list (:mod:`mbnas.data.problems`),
so malformed or inconsistent files are listed by name instead of ending in a traceback:
missing or invalid geometry tags, pixel data that is truncated or compressed in a
transfer syntax that cannot be decoded here, slices of one series that differ in size,
spacing or orientation, duplicate instance UIDs, and structure sets whose ROI numbers or
contour data are missing or invalid.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from mbnas.data.problems import Problem, error

# Tags an image slice must have (the geometry SimpleITK and the contour mapping use).
_REQUIRED = ("Rows", "Columns", "BitsAllocated", "PixelSpacing", "ImageOrientationPatient",
             "ImagePositionPatient", "PixelData")
# A contour this far (in slices) from the nearest slice lies between two slices.
SLICE_TOLERANCE = 0.25


def slice_problem(ds: Any) -> str | None:
    """What is wrong with one image slice's header or pixel data (None: nothing)."""
    missing = [k for k in _REQUIRED if k not in ds]
    if missing:
        return f"no {', '.join(missing)}; every slice of a series needs it"
    bits = _int(ds.BitsAllocated)
    if bits not in (8, 16, 32):
        return f"BitsAllocated is {ds.BitsAllocated} (8, 16 or 32 expected)"
    rows, cols = _int(ds.Rows), _int(ds.Columns)
    if not rows or not cols or rows < 0 or cols < 0:
        return f"Rows x Columns is {ds.Rows} x {ds.Columns}"
    spacing = _floats(ds.PixelSpacing)
    if spacing is None or len(spacing) != 2 or not (spacing > 0).all():
        shown = spacing.tolist() if spacing is not None else list(ds.PixelSpacing)
        return (f"PixelSpacing {shown} must be two positive numbers (mm); "
                "fix the header")
    orientation = _floats(ds.ImageOrientationPatient)
    if orientation is None or len(orientation) != 6 or not _unit_frame(orientation):
        return (f"ImageOrientationPatient {list(ds.ImageOrientationPatient)} is not two "
                "perpendicular unit vectors")
    position = _floats(ds.ImagePositionPatient)
    if position is None or len(position) != 3:
        return f"ImagePositionPatient {list(ds.ImagePositionPatient)} is not 3 numbers"
    return _pixel_problem(ds, rows, cols, bits)


def _pixel_problem(ds: Any, rows: int, cols: int, bits: int) -> str | None:
    """Uncompressed: enough bytes. Compressed: decodable here, to the declared size."""
    from pydicom.uid import UID, ImplicitVRLittleEndian

    meta = getattr(ds, "file_meta", None)
    syntax = UID(str(meta.get("TransferSyntaxUID", ImplicitVRLittleEndian)) if meta is not None
                 else ImplicitVRLittleEndian)
    values = rows * cols * _int(ds.get("SamplesPerPixel", 1)) * max(
        _int(ds.get("NumberOfFrames", 1)), 1)
    if not syntax.is_compressed:
        expected = values * bits // 8
        if len(ds.PixelData) < expected:
            return f"pixel data truncated ({len(ds.PixelData)} of {expected} bytes)"
        return None
    from pydicom.pixels import get_decoder

    try:
        decoder = get_decoder(syntax)
    except NotImplementedError:
        return f"pixel data in transfer syntax {syntax} ({syntax.name}), which pydicom cannot read"
    if not decoder.is_available:
        return (f"pixel data compressed as {syntax.name} ({syntax}), which cannot be decoded "
                f"here (needs {' or '.join(decoder.missing_dependencies)}); decompress the "
                "series first, e.g. `gdcmconv --raw IN OUT`")
    try:
        decoded = np.asarray(ds.pixel_array)
    except Exception as exc:  # noqa: BLE001 - the decoders raise many types on bad data
        first = str(exc).splitlines()[0] if str(exc) else ""
        return f"{syntax.name} pixel data cannot be decoded ({type(exc).__name__}: {first})"
    if decoded.size != values:
        return f"decoded {syntax.name} pixel data has {decoded.size} of {values} values"
    return None


def series_problems(folder: Path, files: list[tuple[Path, Any]]) -> list[Problem]:
    """Slices of one series that disagree: duplicate SOPInstanceUIDs, several sizes,
    pixel spacings or orientations."""
    problems = []
    uids = Counter(str(ds.get("SOPInstanceUID", "")) for _, ds in files)
    for uid, n in uids.items():
        if uid and n > 1:
            names = [p.name for p, ds in files if str(ds.get("SOPInstanceUID", "")) == uid]
            problems.append(error(folder, f"{n} slices share SOPInstanceUID {uid} ("
                                          f"{', '.join(names[:4])}): a slice copied twice?"))
    for what, key in (("sizes", lambda d: f"{_int(d.Rows)} x {_int(d.Columns)}"),
                      ("pixel spacings", lambda d: "x".join(
                          f"{v:.4g}" for v in _floats(d.PixelSpacing))),
                      ("orientations", lambda d: "[" + ", ".join(
                          f"{v:.3g}" for v in _floats(d.ImageOrientationPatient)) + "]")):
        groups: dict[str, list[str]] = {}
        for path, ds in files:
            groups.setdefault(key(ds), []).append(path.name)
        if len(groups) > 1:
            problems.append(error(folder, f"the slices of one series have {len(groups)} {what}"
                                          ": " + "; ".join(f"{k} ({len(v)}: {v[0]}...)"
                                                           for k, v in groups.items())))
    return problems


def structure_set(path: Path, struct: Any, problems: list[Problem],
                  ) -> tuple[dict[int, str], dict[int, list[Any]]] | None:
    """ROI names and contour items by ROI number; None (and errors) when the numbers are
    missing or shared, so that no ROI could be told from another."""
    names: dict[int, str] = {}
    ok = True
    for k, roi in enumerate(struct.get("StructureSetROISequence", []), start=1):
        number, name = _int(roi.get("ROINumber")), str(roi.get("ROIName", f"#{k}"))
        if number is None:
            problems.append(error(path, f"ROI '{name}' (item {k} of StructureSetROISequence) "
                                        "has no ROINumber"))
            ok = False
        elif number in names:
            problems.append(error(path, f"ROIs '{names[number]}' and '{name}' share ROINumber "
                                        f"{number}; each ROI needs its own number"))
            ok = False
        else:
            names[number] = name
    contours: dict[int, list[Any]] = {}
    for k, item in enumerate(struct.get("ROIContourSequence", []), start=1):
        number = _int(item.get("ReferencedROINumber"))
        if number is None:
            problems.append(error(path, f"item {k} of ROIContourSequence has no "
                                        "ReferencedROINumber, so its ROI is unknown"))
            ok = False
            continue
        contours.setdefault(number, []).extend(item.get("ContourSequence", []))
    return (names, contours) if ok else None


def contour_points(contour: Any) -> tuple[np.ndarray | None, str | None]:
    """The (N, 3) points (mm) of a contour item, or why they cannot be used."""
    if "ContourData" not in contour:
        return None, "has no ContourData"
    values = _floats(contour.ContourData, finite=False)
    if values is None:
        return None, "ContourData holds values that are not numbers"
    if len(values) % 3:
        return None, f"ContourData holds {len(values)} values, not a multiple of 3 (x, y, z)"
    if not np.isfinite(values).all():
        return None, "ContourData holds NaN or infinite values"
    return values.reshape(-1, 3), None


def shape_problem(index: np.ndarray) -> str | None:
    """What makes a contour (voxel indices, one slice) unusable as a closed polygon."""
    if len(index) < 3:
        return f"has {len(index)} point(s); a closed contour needs at least 3"
    k = float(np.round(index[:, 2].mean()))
    if np.abs(index[:, 2] - k).max() > SLICE_TOLERANCE:
        return (f"lies between slices (at slice index {index[:, 2].mean():.2f}); its points "
                "must lie on a slice of the image series")
    if self_intersects(index[:, :2]):
        return "crosses itself"
    return None


def self_intersects(ring: np.ndarray) -> bool:
    """Whether a closed polygon's edges cross (vertices shared by neighbours excepted)."""
    a, b = ring, np.roll(ring, -1, axis=0)
    n = len(ring)
    if n < 4:
        return False
    d = b - a
    # edge i vs edge j: solve a_i + s d_i = a_j + t d_j
    cross = d[:, None, 0] * d[None, :, 1] - d[:, None, 1] * d[None, :, 0]
    diff = a[None, :, :] - a[:, None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        s = (diff[..., 0] * d[None, :, 1] - diff[..., 1] * d[None, :, 0]) / cross
        t = (diff[..., 0] * d[:, None, 1] - diff[..., 1] * d[:, None, 0]) / cross
    i, j = np.triu_indices(n, k=2)
    keep = ~((i == 0) & (j == n - 1))  # the closing edge touches the first
    s, t = s[i[keep], j[keep]], t[i[keep], j[keep]]
    eps = 1e-9
    return bool(((s > eps) & (s < 1 - eps) & (t > eps) & (t < 1 - eps)).any())


def _unit_frame(v: np.ndarray) -> bool:
    row, col = v[:3], v[3:]
    return bool(abs(np.linalg.norm(row) - 1) < 1e-2 and abs(np.linalg.norm(col) - 1) < 1e-2
                and abs(float(np.dot(row, col))) < 1e-2)


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _floats(value: Any, finite: bool = True) -> np.ndarray | None:
    try:
        out = np.asarray([float(v) for v in (value if isinstance(value, (list, tuple)) or
                                             hasattr(value, "__iter__") else [value])])
    except (TypeError, ValueError):
        return None
    if finite and not np.isfinite(out).all():
        return None
    return out
