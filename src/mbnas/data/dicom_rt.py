"""`mbnas import dicom-rt`: folders of DICOM CT/MR series with RTSTRUCT contours -> MSD.

One patient is one folder holding one image series and one RTSTRUCT file (a tree of such
folders is searched). pydicom reads the headers and the structure sets, SimpleITK reads
the series (its geometry maps contour points, in patient mm, to voxel indices), and
dcmrtstruct2nii fills the contour polygons (``skimage.draw.polygon2mask`` on the exact,
sub-voxel contour points; holes by XOR, as DICOM defines them). docs/real_data.md says
why this library and not rt-utils or platipy.

Every problem is listed, one line each, naming its file: unreadable files, a missing or
ambiguous ROI, more than one series or a gap in one (a series split in two), contours
outside the image, overlapping ROIs, mixed modalities. The filled mask volume of every ROI
is compared with the area its contours enclose; a difference over
:data:`AREA_TOLERANCE` is a warning.
"""

from __future__ import annotations

import contextlib
import io
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mbnas.data.msd_write import MsdCase, write_msd
from mbnas.data.problems import Problem, error, warning
from mbnas.errors import ConfigError, DatasetError

if TYPE_CHECKING:
    import SimpleITK as sitk

IMAGE_MODALITIES = ("CT", "MR")
# Filled mask volume vs the area the contours enclose: larger relative differences are
# reported (the 5 %).
AREA_TOLERANCE = 0.05
# Files that are never DICOM, so not reported as unreadable.
_NOT_DICOM = (".txt", ".md", ".json", ".csv", ".pdf", ".xml", ".nii", ".gz", ".zip", ".nrrd",
              ".png", ".jpg", ".html")


@dataclass(frozen=True)
class RoiSpec:
    """One label of the output: its name and the ROI names (case-insensitive) it takes."""

    label: str
    names: tuple[str, ...]

    def matches(self, roi_name: str) -> bool:
        return roi_name.strip().casefold() in self.names


def parse_rois(text: str) -> list[RoiSpec]:
    """``--roi`` value: ``NAME[,NAME..]``, each ``NAME`` or ``LABEL=ALIAS|ALIAS..``.

    ``tumour=GTV-1|GTV1,lung`` makes label 1 "tumour" from a ROI called GTV-1 or GTV1
    (any case), and label 2 "lung" from a ROI called lung.
    """
    specs: list[RoiSpec] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            raise ConfigError(f"--roi {text!r}: empty ROI name")
        label, _, aliases = part.partition("=")
        names = [a.strip() for a in (aliases or label).split("|")]
        if not label.strip() or not all(names):
            raise ConfigError(f"--roi {text!r}: {part!r} must be NAME or LABEL=ALIAS|ALIAS")
        specs.append(RoiSpec(label.strip(), tuple(n.casefold() for n in names)))
    labels = [s.label.casefold() for s in specs]
    if len(set(labels)) != len(labels) or "background" in labels:
        raise ConfigError(f"--roi {text!r}: label names must be unique and not 'background'")
    return specs


@dataclass
class RoiCheck:
    """Filled voxels of one ROI of one case and the area (in voxels) its contours enclose."""

    case_id: str
    roi: str
    mask_voxels: int
    contour_voxels: float

    @property
    def difference(self) -> float:
        """Relative difference of the mask volume from the contour area."""
        return abs(self.mask_voxels - self.contour_voxels) / max(self.contour_voxels, 1e-9)


@dataclass
class Patient:
    """The DICOM files of one folder, by kind."""

    folder: Path
    series: dict[str, list[tuple[Path, Any]]] = field(default_factory=lambda: defaultdict(list))
    structs: list[tuple[Path, Any]] = field(default_factory=list)


def read_dicom_rt(source: str | Path, rois: list[RoiSpec], site: str | None = None,
                  ) -> tuple[list[MsdCase], list[Problem], list[RoiCheck]]:
    """Convert every patient folder under ``source``; list every problem found.

    Returns:
        The cases that converted, every problem, and the volume check of every ROI.
    """
    source = Path(source)
    if not source.is_dir():
        raise ConfigError(f"{source}: not a folder of DICOM files")
    require_dicom()
    problems: list[Problem] = []
    patients = _scan(source, problems)
    if not patients and not problems:
        problems.append(error(source, "no DICOM image series or RTSTRUCT file found"))
    cases: list[MsdCase] = []
    checks: list[RoiCheck] = []
    for patient in patients:
        case = _convert(patient, source, rois, site, problems, checks)
        if case is not None:
            cases.append(case)
    return cases, problems, checks


def import_dicom_rt(source: str | Path, out: str | Path, rois: list[RoiSpec],
                    site: str | None = None, name: str | None = None,
                    ) -> tuple[Path, list[Problem], list[RoiCheck]]:
    """:func:`read_dicom_rt`, then write the MSD folder ``out``; refuse on any error."""
    cases, problems, checks = read_dicom_rt(source, rois, site)
    refuse_if_errors(source, problems)
    modality = str(cases[0].image.GetMetaData("mbnas_modality")) if cases else "CT"
    record = {"importer": "dicom-rt", "source": str(Path(source).resolve()),
              "rois": {r.label: list(r.names) for r in rois}}
    path = write_msd(out, cases, ["background", *[r.label for r in rois]], modality,
                     name or Path(out).name, record)
    return path, problems, checks


def require_dicom() -> None:
    """Refuse in one line when the ``dicom`` extra is not installed."""
    import importlib.util

    missing = [m for m in ("pydicom", "SimpleITK", "dcmrtstruct2nii", "skimage")
               if importlib.util.find_spec(m) is None]
    if missing:
        raise ConfigError(f"DICOM import needs {', '.join(missing)}: pip install 'mbnas[dicom]'")


def refuse_if_errors(source: str | Path, problems: list[Problem]) -> None:
    """Raise a DatasetError listing every error, one line each, if there is one."""
    errors = [str(p) for p in problems if p.is_error]
    if errors:
        raise DatasetError(f"cannot import {source}: {len(errors)} problem(s):\n  "
                           + "\n  ".join(errors))


def _scan(source: Path, problems: list[Problem]) -> list[Patient]:
    import pydicom
    from pydicom.errors import InvalidDicomError

    patients: dict[Path, Patient] = {}
    for path in sorted(p for p in source.rglob("*") if p.is_file()):
        if path.name.startswith(".") or path.name.casefold().endswith(_NOT_DICOM):
            continue
        try:
            ds = pydicom.dcmread(path)
            modality = str(ds.get("Modality", ""))
            if modality in IMAGE_MODALITIES:
                _check_pixels(ds)
        except (InvalidDicomError, OSError, ValueError, AttributeError, EOFError) as exc:
            problems.append(error(path, f"not a readable DICOM file ({type(exc).__name__}: "
                                        f"{str(exc).splitlines()[0] if str(exc) else ''})"))
            continue
        patient = patients.setdefault(path.parent, Patient(path.parent))
        if modality == "RTSTRUCT":
            patient.structs.append((path, ds))
        elif modality in IMAGE_MODALITIES:
            patient.series[str(ds.SeriesInstanceUID)].append((path, ds))
    return list(patients.values())


def _check_pixels(ds: Any) -> None:
    expected = int(ds.Rows) * int(ds.Columns) * int(ds.get("SamplesPerPixel", 1)) \
        * int(ds.BitsAllocated) // 8
    if len(ds.PixelData) < expected:
        raise ValueError(f"pixel data truncated ({len(ds.PixelData)} of {expected} bytes)")


def _convert(patient: Patient, source: Path, rois: list[RoiSpec], site: str | None,
             problems: list[Problem], checks: list[RoiCheck]) -> MsdCase | None:
    folder = patient.folder
    if not patient.series:
        for path, _ in patient.structs:
            problems.append(error(path, "RTSTRUCT without a CT or MR series in its folder"))
        return None
    modalities = {str(files[0][1].Modality) for files in patient.series.values()}
    if len(modalities) > 1:
        problems.append(error(folder, "mixed modalities in one patient folder: " + ", ".join(
            f"{uid[-12:]} {files[0][1].Modality} ({len(files)} files)"
            for uid, files in patient.series.items())))
        return None
    if len(patient.series) > 1:
        problems.append(error(folder, f"{len(patient.series)} image series in one folder (a "
                                      "series split in two?): " + ", ".join(
            f"...{uid[-12:]} ({len(files)} files)" for uid, files in patient.series.items())
            + "; put each series with its RTSTRUCT in a folder of its own"))
        return None
    if len(patient.structs) != 1:
        problems.append(error(folder, "no RTSTRUCT file beside the image series" if not
                              patient.structs else f"{len(patient.structs)} RTSTRUCT files; "
                              "keep the one to import"))
        return None
    ((uid, unsorted),) = patient.series.items()
    files = _sorted_slices(folder, unsorted, problems)
    if files is None:
        return None
    struct_path, struct = patient.structs[0]
    referenced = _referenced_series(struct)
    if referenced and uid not in referenced:
        problems.append(error(struct_path, f"refers to series ...{sorted(referenced)[0][-12:]}"
                                           f", not to the series in its folder (...{uid[-12:]})"))
        return None
    image = _read_series([p for p, _ in files])
    modality = str(files[0][1].Modality)
    image.SetMetaData("mbnas_modality", modality)
    case_id = _case_id(folder, source)
    label = _label_map(case_id, image, struct_path, struct, rois, problems, checks)
    if label is None:
        return None
    return MsdCase(case_id, image, label, site)


def _sorted_slices(folder: Path, files: list[tuple[Path, Any]],
                   problems: list[Problem]) -> list[tuple[Path, Any]] | None:
    """The slices in order along the slice normal; None (and an error) at a gap."""
    ds = files[0][1]
    row, col = np.asarray(ds.ImageOrientationPatient[:3], float), \
        np.asarray(ds.ImageOrientationPatient[3:], float)
    normal = np.cross(row, col)
    pos = [float(np.dot(normal, np.asarray(d.ImagePositionPatient, float))) for _, d in files]
    order = np.argsort(pos)
    files = [files[i] for i in order]
    steps = np.diff(np.sort(pos))
    if len(steps) and (steps.min() < 1e-3 or steps.max() > 1.5 * np.median(steps)):
        where = int(np.argmax(steps)) if steps.max() > 1.5 * np.median(steps) else \
            int(np.argmin(steps))
        problems.append(error(folder, f"slices are not evenly spaced ({steps[where]:.2f} mm "
                                      f"after {files[where][0].name}, median "
                                      f"{np.median(steps):.2f} mm): a series split in two or "
                                      "missing slices"))
        return None
    return files


def _referenced_series(struct: Any) -> set[str]:
    uids = set()
    for frame in struct.get("ReferencedFrameOfReferenceSequence", []):
        for study in frame.get("RTReferencedStudySequence", []):
            for series in study.get("RTReferencedSeriesSequence", []):
                uids.add(str(series.SeriesInstanceUID))
    return uids


def _read_series(paths: list[Path]) -> sitk.Image:
    import SimpleITK as sitk

    reader = sitk.ImageSeriesReader()
    reader.SetFileNames([str(p) for p in paths])
    return reader.Execute()


def _case_id(folder: Path, source: Path) -> str:
    rel = folder.relative_to(source).as_posix() if folder != source else folder.name
    return re.sub(r"[^A-Za-z0-9_-]+", "_", rel).strip("_") or "case"


def _label_map(case_id: str, image: sitk.Image, struct_path: Path, struct: Any,
               rois: list[RoiSpec], problems: list[Problem],
               checks: list[RoiCheck]) -> sitk.Image | None:
    import SimpleITK as sitk

    names = {int(r.ROINumber): str(r.ROIName) for r in struct.get("StructureSetROISequence", [])}
    contours = {int(c.ReferencedROINumber): list(c.get("ContourSequence", []))
                for c in struct.get("ROIContourSequence", [])}
    size = np.asarray(image.GetSize())
    label = np.zeros(tuple(reversed(image.GetSize())), np.uint8)
    ok = True
    for value, spec in enumerate(rois, start=1):
        found = [n for n, roi_name in names.items() if spec.matches(roi_name)]
        if len(found) != 1:
            has = ", ".join(sorted(names.values())) or "none"
            problems.append(error(struct_path, f"ROI '{spec.label}' ({'|'.join(spec.names)}) "
                                               f"{'not found' if not found else 'is ambiguous'}"
                                               f" (ROIs: {has})"))
            ok = False
            continue
        polygons, outside = [], 0
        for contour in contours.get(found[0], []):
            if str(contour.get("ContourGeometricType", "")).upper() not in (
                    "CLOSED_PLANAR", "INTERPOLATED_PLANAR"):
                continue
            points = np.asarray(contour.ContourData, float).reshape(-1, 3)
            index = np.array([image.TransformPhysicalPointToContinuousIndex(p.tolist())
                              for p in points])
            if (index < -0.5).any() or (index > size - 0.5).any():
                outside += 1
                continue
            polygons.append(index)
        roi_name = names[found[0]]
        if outside:
            problems.append(error(struct_path, f"ROI '{roi_name}': {outside} contour(s) lie "
                                               "outside the image series"))
            ok = False
            continue
        if not polygons:
            problems.append(warning(struct_path, f"ROI '{roi_name}' has no contours"))
            continue
        mask = _fill(image, polygons)
        clash = int(np.count_nonzero(mask & (label > 0)))
        if clash:
            other = rois[int(np.bincount(label[mask & (label > 0)]).argmax()) - 1].label
            problems.append(error(struct_path, f"ROIs '{other}' and '{spec.label}' overlap in "
                                               f"{clash} voxel(s); a voxel can have one label"))
            ok = False
            continue
        label[mask] = value
        check = RoiCheck(case_id, spec.label, int(mask.sum()), _enclosed_area(polygons))
        checks.append(check)
        if check.difference > AREA_TOLERANCE:
            problems.append(warning(struct_path, f"ROI '{roi_name}': the filled mask has "
                                                 f"{check.mask_voxels} voxels, its contours "
                                                 f"enclose {check.contour_voxels:.0f} "
                                                 f"({100 * check.difference:.0f} % apart)"))
    if not ok:
        return None
    out = sitk.GetImageFromArray(label)
    out.CopyInformation(image)
    return out


def _fill(image: sitk.Image, polygons: list[np.ndarray]) -> np.ndarray:
    """The voxels inside the contours, by dcmrtstruct2nii (z, y, x boolean array)."""
    import SimpleITK as sitk

    with contextlib.redirect_stdout(io.StringIO()):  # its import prints a citation
        from dcmrtstruct2nii.adapters.convert.rtstructcontour2mask import DcmPatientCoords2Mask

    # dcmrtstruct2nii takes patient coordinates and maps them itself; give it the points
    # back in mm (TransformContinuousIndexToPhysicalPoint undoes our bounds check's map).
    contours = []
    for index in polygons:
        mm = np.array([image.TransformContinuousIndexToPhysicalPoint(p.tolist()) for p in index])
        contours.append({"type": "CLOSED_PLANAR",
                         "points": {"x": mm[:, 0], "y": mm[:, 1], "z": mm[:, 2]}})
    mask = DcmPatientCoords2Mask().convert(contours, image, 0, 1)
    return sitk.GetArrayFromImage(mask).astype(bool)


def _enclosed_area(polygons: list[np.ndarray]) -> float:
    """Voxels enclosed by the contours: shoelace areas, a contour inside an odd number of
    others on its slice being a hole (subtracted), as DICOM's XOR rule says."""
    from skimage.measure import points_in_poly

    by_slice: dict[int, list[np.ndarray]] = defaultdict(list)
    for index in polygons:
        by_slice[int(round(index[0, 2]))].append(index[:, :2])
    total = 0.0
    for rings in by_slice.values():
        for i, ring in enumerate(rings):
            x, y = ring[:, 0], ring[:, 1]
            area = 0.5 * abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))
            depth = sum(bool(points_in_poly(ring[:1], other)[0])
                        for j, other in enumerate(rings) if j != i)
            total += -area if depth % 2 else area
    return float(total)
