"""Write small DICOM series and RTSTRUCT files with pydicom, for the importer's tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np

SPACING = (2.0, 2.0, 3.0)  # column, row, slice (mm)


def _meta(sop_class: str, sop_uid: str):  # noqa: ANN202
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return meta


def write_series(folder: Path, n_slices: int = 6, size: int = 16, modality: str = "CT",
                 series_uid: str | None = None, origin_z: float = 0.0,
                 skip: tuple[int, ...] = (), frame: str = "1.2.3.9",
                 prefix: str = "IMG", noise: bool = False) -> str:
    """A series of ``n_slices`` slices of ``size`` x ``size`` in ``folder``; its UID.

    ``noise``: random pixels, so the written NIfTI files do not compress.
    """
    from pydicom.dataset import Dataset
    from pydicom.uid import generate_uid

    folder.mkdir(parents=True, exist_ok=True)
    series_uid = series_uid or generate_uid()
    sop_class = "1.2.840.10008.5.1.4.1.1.2" if modality == "CT" else "1.2.840.10008.5.1.4.1.1.4"
    for k in range(n_slices):
        if k in skip:
            continue
        uid = generate_uid()
        ds = Dataset()
        ds.file_meta = _meta(sop_class, uid)
        ds.SOPClassUID, ds.SOPInstanceUID = sop_class, uid
        ds.Modality, ds.PatientID, ds.StudyInstanceUID = modality, "P1", "1.2.3.4"
        ds.SeriesInstanceUID, ds.FrameOfReferenceUID = series_uid, frame
        ds.InstanceNumber = k + 1
        ds.ImagePositionPatient = [0.0, 0.0, origin_z + k * SPACING[2]]
        ds.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
        ds.PixelSpacing = [SPACING[1], SPACING[0]]
        ds.SliceThickness = SPACING[2]
        ds.Rows = ds.Columns = size
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleIntercept, ds.RescaleSlope = 0, 1
        pixels = np.full((size, size), -1000, np.int16)
        pixels[size // 4:3 * size // 4, size // 4:3 * size // 4] = 40 + k
        if noise:
            pixels = np.random.default_rng(k).integers(-1000, 1000, (size, size), np.int16)
        ds.PixelData = pixels.tobytes()
        ds.save_as(folder / f"{prefix}_{k:03d}.dcm", enforce_file_format=True)
    return series_uid


def square(x0: float, y0: float, x1: float, y1: float, z: float) -> list[float]:
    """ContourData of an axis-aligned rectangle in patient mm."""
    return [x0, y0, z, x1, y0, z, x1, y1, z, x0, y1, z]


def write_rtstruct(folder: Path, rois: dict[str, list[list[float]]],
                   series_uid: str | None = None, name: str = "RS.dcm") -> Path:
    """An RTSTRUCT with one ROI per entry (name -> contours' ContourData)."""
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence
    from pydicom.uid import generate_uid

    sop_class, uid = "1.2.840.10008.5.1.4.1.1.481.3", generate_uid()
    ds = Dataset()
    ds.file_meta = _meta(sop_class, uid)
    ds.SOPClassUID, ds.SOPInstanceUID = sop_class, uid
    ds.Modality, ds.PatientID, ds.StudyInstanceUID = "RTSTRUCT", "P1", "1.2.3.4"
    ds.SeriesInstanceUID = generate_uid()
    if series_uid is not None:
        series = Dataset()
        series.SeriesInstanceUID = series_uid
        study = Dataset()
        study.RTReferencedSeriesSequence = Sequence([series])
        frame = Dataset()
        frame.FrameOfReferenceUID = "1.2.3.9"
        frame.RTReferencedStudySequence = Sequence([study])
        ds.ReferencedFrameOfReferenceSequence = Sequence([frame])
    structs, contours = [], []
    for number, (roi, data) in enumerate(rois.items(), start=1):
        s = Dataset()
        s.ROINumber, s.ROIName = number, roi
        structs.append(s)
        c = Dataset()
        c.ReferencedROINumber = number
        items = []
        for points in data:
            item = Dataset()
            item.ContourGeometricType = "CLOSED_PLANAR"
            item.NumberOfContourPoints = len(points) // 3
            item.ContourData = points
            items.append(item)
        c.ContourSequence = Sequence(items)
        contours.append(c)
    ds.StructureSetROISequence = Sequence(structs)
    ds.ROIContourSequence = Sequence(contours)
    path = folder / name
    folder.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def tumour(z_slices: range, x0: float = 9.0, x1: float = 19.0) -> list[list[float]]:
    """Rectangles from voxel centre 4.5 to 9.5 (x, y), one per slice index."""
    return [square(x0, x0, x1, x1, k * SPACING[2]) for k in z_slices]
