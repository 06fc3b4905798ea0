"""Label maps from RTSTRUCT contours, for `mbnas import dicom-rt`.

The contours of each ROI asked for are checked (:mod:`mbnas.data.dicom_checks`), mapped to
voxel indices through the series' geometry and filled by dcmrtstruct2nii
(``skimage.draw.polygon2mask`` on the exact, sub-voxel points; holes by XOR, as DICOM
defines them). The filled volume of every ROI is compared with the area its contours
enclose; a difference over :data:`AREA_TOLERANCE` is a warning, which names the contours
that cross themselves when there are some (their area is not defined).
"""

from __future__ import annotations

import contextlib
import io
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mbnas.data.dicom_checks import contour_points, shape_problem, structure_set
from mbnas.data.problems import Problem, error, warning

if TYPE_CHECKING:
    import SimpleITK as sitk

    from mbnas.data.dicom_rt import RoiSpec

# Filled mask volume vs the area the contours enclose: larger relative differences are
# reported (the 5 %).
AREA_TOLERANCE = 0.05


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



def label_map(case_id: str, image: sitk.Image, struct_path: Path, struct: Any,
               rois: list[RoiSpec], problems: list[Problem],
               checks: list[RoiCheck]) -> sitk.Image | None:
    """The ROIs' label map on the image's grid; None when an error was listed."""
    import SimpleITK as sitk

    found_set = structure_set(struct_path, struct, problems)
    if found_set is None:
        return None
    names, contours = found_set
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
        roi_name = names[found[0]]
        polygons, crossing = _polygons(image, struct_path, roi_name,
                                         contours.get(found[0], []), problems)
        if polygons is None:
            ok = False
            continue
        if not polygons:
            problems.append(warning(struct_path, f"ROI '{roi_name}' has no usable contours"))
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
        if check.difference > AREA_TOLERANCE and crossing:  # the area is not defined
            problems.append(warning(struct_path, f"ROI '{roi_name}': contour(s) "
                                                 f"{', '.join(crossing)} cross themselves, so "
                                                 "the area they enclose is not defined; the "
                                                 "mask fills them by the even-odd rule, check"
                                                 " it"))
        elif check.difference > AREA_TOLERANCE:
            problems.append(warning(struct_path, f"ROI '{roi_name}': the filled mask has "
                                                 f"{check.mask_voxels} voxels, its contours "
                                                 f"enclose {check.contour_voxels:.0f} "
                                                 f"({100 * check.difference:.0f} % apart)"))
    if not ok:
        return None
    out = sitk.GetImageFromArray(label)
    out.CopyInformation(image)
    return out


def _polygons(image: sitk.Image, path: Path, roi: str, items: list[Any],
              problems: list[Problem]) -> tuple[list[np.ndarray] | None, list[str]]:
    """The ROI's closed contours in voxel indices (None: an error was listed), and those
    that cross themselves ("3 (slice 40)")."""
    size = np.asarray(image.GetSize())
    polygons: list[np.ndarray] = []
    crossing: list[str] = []
    outside, ok = 0, True
    for k, contour in enumerate(items, start=1):
        if str(contour.get("ContourGeometricType", "")).upper() not in (
                "CLOSED_PLANAR", "INTERPOLATED_PLANAR"):
            continue
        points, why = contour_points(contour)
        if points is None:
            problems.append(error(path, f"ROI '{roi}', contour {k}: {why}"))
            ok = False
            continue
        index = np.array([image.TransformPhysicalPointToContinuousIndex(p.tolist())
                          for p in points]).reshape(-1, 3)
        if (index < -0.5).any() or (index > size - 0.5).any():
            outside += 1
            continue
        why = shape_problem(index)
        if why is not None and why.startswith("lies between"):
            problems.append(error(path, f"ROI '{roi}', contour {k} {why}"))
            ok = False
            continue
        if why is not None and why.startswith("has"):
            problems.append(warning(path, f"ROI '{roi}', contour {k} {why}; skipped"))
            continue
        if why is not None:  # crosses itself: said when its area differs from the mask's
            crossing.append(f"{k} (slice {int(round(index[0, 2]))})")
        polygons.append(index)
    if outside:
        problems.append(error(path, f"ROI '{roi}': {outside} contour(s) lie outside the image "
                                    "series"))
        ok = False
    return (polygons if ok else None), crossing


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
