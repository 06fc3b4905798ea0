"""`mbnas import dicom-rt`: folders of DICOM CT/MR series with RTSTRUCT contours -> MSD.

One patient is one folder holding one image series and one RTSTRUCT file (a tree of such
folders is searched); an RTSTRUCT alone in a folder of its own joins the folder of the
series it refers to (the DICOMDIR layout, one folder per series). pydicom reads the
headers and the structure sets (and decodes compressed pixel data to check it), SimpleITK
reads the series (its geometry maps contour points, in patient mm, to voxel indices), and
:mod:`mbnas.data.dicom_labels` fills the contours. docs/real_data.md says why this
library and not rt-utils or platipy.

Every problem is listed, one line each, naming its file: unreadable or malformed files
(:mod:`mbnas.data.dicom_checks`), a missing or ambiguous ROI, more than one series or a gap
in one (a series split in two), slices that disagree, contours outside the image or
between its slices, overlapping ROIs, mixed modalities, two patients whose folder names
make one case id.
"""

from __future__ import annotations

import os
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mbnas.data.dicom_checks import series_problems, slice_problem
from mbnas.data.dicom_labels import RoiCheck, label_map
from mbnas.data.msd_write import MsdCase, write_msd
from mbnas.data.problems import Problem, error
from mbnas.errors import ConfigError, DatasetError

if TYPE_CHECKING:
    import SimpleITK as sitk

IMAGE_MODALITIES = ("CT", "MR")
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
class Patient:
    """The DICOM files of one folder, by kind.

    ``case_folder`` names the case: the folder itself, or, when its RTSTRUCT sits in a
    series folder of its own (DICOMDIR layouts), the folder holding both.
    """

    folder: Path
    case_folder: Path | None = None
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
    cases, checks = [], []
    for patient in patients:
        case = _convert(patient, source, rois, site, problems, checks)
        if case is not None:
            cases.append(case)
    _refuse_same_ids(patients, source, problems)
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
    found: dict[tuple[Path, str], list[Path]] = {}  # (folder, problem) -> files
    for path in sorted(p for p in source.rglob("*") if p.is_file()):
        if path.name.startswith(".") or path.name.casefold().endswith(_NOT_DICOM):
            continue
        try:
            ds = pydicom.dcmread(path)
            modality = str(ds.get("Modality", ""))
            wrong = slice_problem(ds) if modality in IMAGE_MODALITIES else None
        except (InvalidDicomError, OSError, ValueError, AttributeError, EOFError,
                KeyError, TypeError) as exc:
            wrong = (f"not a readable DICOM file ({type(exc).__name__}: "
                     f"{str(exc).splitlines()[0] if str(exc) else ''})")
        if wrong is not None:
            found.setdefault((path.parent, wrong), []).append(path)
            continue
        patient = patients.setdefault(path.parent, Patient(path.parent))
        if modality == "RTSTRUCT":
            patient.structs.append((path, ds))
        elif modality in IMAGE_MODALITIES:
            patient.series[str(ds.get("SeriesInstanceUID", ""))].append((path, ds))
    for (_, wrong), paths in found.items():  # one line for a problem of many slices
        more = f" (and {len(paths) - 1} more file(s) in this folder)" if len(paths) > 1 else ""
        problems.append(error(paths[0], wrong + more))
    broken = {folder for folder, _ in found}  # other findings there would follow from these
    _pair_own_folders(patients)
    return [p for folder, p in patients.items() if folder not in broken]


def _pair_own_folders(patients: dict[Path, Patient]) -> None:
    """Join an RTSTRUCT alone in its folder to the one folder (without an RTSTRUCT) that
    holds the image series it refers to, as DICOMDIR layouts store them."""
    by_series = {uid: folder for folder, p in patients.items() if not p.structs
                 for uid in p.series}
    for folder, patient in list(patients.items()):
        if patient.series or len(patient.structs) != 1:
            continue
        targets = {by_series[u] for u in _referenced_series(patient.structs[0][1])
                   if u in by_series}
        if len(targets) != 1 or patients[next(iter(targets))].structs:
            continue
        target = patients[targets.pop()]
        target.structs.append(patient.structs[0])
        target.case_folder = Path(os.path.commonpath([folder, target.folder]))
        del patients[folder]


def _convert(patient: Patient, source: Path, rois: list[RoiSpec], site: str | None,
             problems: list[Problem], checks: list[RoiCheck]) -> MsdCase | None:
    folder = patient.folder
    if not patient.series:
        for path, ds in patient.structs:
            uids = sorted(_referenced_series(ds))
            problems.append(error(path, "RTSTRUCT without a CT or MR series in its folder, "
                                        "and no other folder here holds the one series it "
                                        "refers to (" + (f"...{uids[0][-12:]}" if uids else
                                                         "it names none") + "); put it in "
                                        "the folder of its series, or in a folder of its own "
                                        "beside that series' folder"))
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
        problems.append(error(folder, "no RTSTRUCT file beside the image series, and no "
                              "RTSTRUCT in a folder of its own refers to it (series ..."
                              f"{next(iter(patient.series))[-12:]})" if not
                              patient.structs else f"{len(patient.structs)} RTSTRUCT files; "
                              "keep the one to import"))
        return None
    ((uid, files),) = patient.series.items()
    mismatched = series_problems(folder, files)
    if mismatched:
        problems += mismatched
        return None
    files = _sorted_slices(folder, files, problems)
    if files is None:
        return None
    struct_path, struct = patient.structs[0]
    referenced = _referenced_series(struct)
    if referenced and uid not in referenced:
        problems.append(error(struct_path, f"refers to series ...{sorted(referenced)[0][-12:]}"
                                           f", not to the series in its folder (...{uid[-12:]})"))
        return None
    try:
        image = _read_series([p for p, _ in files])
    except RuntimeError as exc:
        problems.append(error(folder, "SimpleITK cannot read the series ("
                                      f"{str(exc).strip().splitlines()[-1]})"))
        return None
    modality = str(files[0][1].Modality)
    image.SetMetaData("mbnas_modality", modality)
    case_id = _case_id(patient.case_folder or folder, source)
    label = label_map(case_id, image, struct_path, struct, rois, problems, checks)
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
    """The folder's path under ``source``, letters (any script), digits, - and _ kept."""
    rel = folder.relative_to(source).as_posix() if folder != source else folder.name
    return re.sub(r"[^\w-]+", "_", rel).strip("_") or "case"


def _refuse_same_ids(patients: list[Patient], source: Path, problems: list[Problem]) -> None:
    """Two folders whose names clean to one case id (ignoring case, as some file systems
    do) would overwrite each other's files: an error naming both."""
    by_id: dict[str, list[Path]] = defaultdict(list)
    for patient in patients:
        if patient.series:
            where = patient.case_folder or patient.folder
            by_id[_case_id(where, source).casefold()].append(where)
    for folders in by_id.values():
        if len(folders) > 1:
            problems.append(error(folders[0], "has the same case id as " + ", ".join(
                map(str, folders[1:])) + f" ('{_case_id(folders[0], source)}': names are "
                "kept to letters, digits, - and _); rename one of the folders"))
