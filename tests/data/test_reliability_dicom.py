"""Malformed or inconsistent DICOM is one listed problem line, never a traceback
(issue 34, items 8, 12, 13, 14, 16, 17)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
from dicom_factory import SPACING, square, tumour, write_rtstruct, write_series

from mbnas.cli import main
from mbnas.data.dicom_rt import parse_rois, read_dicom_rt

ROIS = parse_rois("tumour=GTV-1")


def _patient(folder: Path) -> None:
    uid = write_series(folder)
    write_rtstruct(folder, {"GTV-1": tumour(range(1, 4)), "Body": [square(1, 1, 29, 29, 0.0)]},
                   uid)


def _edit(path: Path, change: Callable[[pydicom.Dataset], None]) -> None:
    ds = pydicom.dcmread(path)
    change(ds)
    ds.save_as(path)


def _slices(folder: Path, change: Callable[[pydicom.Dataset], None],
            which: tuple[int, ...] = tuple(range(6))) -> None:
    for k in which:
        _edit(folder / f"IMG_{k:03d}.dcm", change)


def _struct(folder: Path, change: Callable[[pydicom.Dataset], None]) -> None:
    _edit(folder / "RS.dcm", change)


def _smaller(ds: pydicom.Dataset) -> None:
    ds.Rows = ds.Columns = 8
    ds.PixelData = np.zeros((8, 8), np.int16).tobytes()


def _set_contour(values: list[float]) -> Callable[[pydicom.Dataset], None]:
    def change(ds: pydicom.Dataset) -> None:
        ds.ROIContourSequence[0].ContourSequence[0].ContourData = values
    return change


def _copy_uid(folder: Path) -> None:
    uid = pydicom.dcmread(folder / "IMG_001.dcm").SOPInstanceUID
    _slices(folder, lambda ds: setattr(ds, "SOPInstanceUID", uid), (3,))


NAN = float("nan")
KINDS: dict[str, tuple[Callable[[Path], None], str]] = {
    # item 12: malformed
    "no ImageOrientationPatient": (lambda f: _slices(f, lambda d: delattr(
        d, "ImageOrientationPatient")), "no ImageOrientationPatient"),
    "a slice without ImagePositionPatient": (lambda f: _slices(f, lambda d: delattr(
        d, "ImagePositionPatient"), (2,)), "IMG_002.dcm: no ImagePositionPatient"),
    "slices of different sizes": (lambda f: _slices(f, _smaller, (4,)), "2 sizes"),
    "BitsAllocated 0": (lambda f: _slices(f, lambda d: setattr(d, "BitsAllocated", 0)),
                        "BitsAllocated is 0"),
    "contour data not a multiple of 3": (lambda f: _struct(f, _set_contour(
        [9.0, 9.0, 3.0, 19.0, 9.0, 3.0, 19.0, 19.0, 3.0, 9.0])), "not a multiple of 3"),
    "NaN in contour data": (lambda f: _struct(f, _set_contour(
        [9.0, 9.0, 3.0, 19.0, NAN, 3.0, 19.0, 19.0, 3.0])), "NaN"),
    "missing ContourData": (lambda f: _struct(f, lambda d: delattr(
        d.ROIContourSequence[0].ContourSequence[0], "ContourData")), "has no ContourData"),
    "missing ROINumber": (lambda f: _struct(f, lambda d: delattr(
        d.StructureSetROISequence[1], "ROINumber")), "'Body' (item 2 of Structure"),
    "missing ReferencedROINumber": (lambda f: _struct(f, lambda d: delattr(
        d.ROIContourSequence[1], "ReferencedROINumber")), "no ReferencedROINumber"),
    # item 8: bad geometry
    "two orientations": (lambda f: _slices(f, lambda d: setattr(
        d, "ImageOrientationPatient", [0.0, 1.0, 0.0, 1.0, 0.0, 0.0]), (3,)),
        "2 orientations"),
    "PixelSpacing 0": (lambda f: _slices(f, lambda d: setattr(d, "PixelSpacing", [0.0, 0.0])),
                       "PixelSpacing [0.0, 0.0] must be two positive numbers"),
    "a contour between slices": (lambda f: _struct(f, _set_contour(
        square(9, 9, 19, 19, 1.5 * SPACING[2]))), "lies between slices"),
    "duplicate SOPInstanceUIDs": (_copy_uid, "share SOPInstanceUID"),
    # item 16
    "two ROIs share a ROINumber": (lambda f: _struct(f, lambda d: setattr(
        d.StructureSetROISequence[1], "ROINumber", 1)), "share ROINumber 1"),
}


@pytest.mark.parametrize("kind", KINDS)
def test_each_malformed_kind_is_one_listed_line_and_exit_2(tmp_path: Path, kind: str,
                                                           capsys) -> None:  # noqa: ANN001
    make, expected = KINDS[kind]
    _patient(tmp_path / "src" / "p")
    make(tmp_path / "src" / "p")
    code = main(["import", "dicom-rt", str(tmp_path / "src"), "--out", str(tmp_path / "o"),
                 "--roi", "tumour=GTV-1"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err, err
    header, *lines = err.strip().splitlines()
    assert header.startswith("error: cannot import") and "1 problem(s)" in header, err
    (line,) = lines
    assert expected in line and str(tmp_path / "src" / "p") in line, line
    assert not (tmp_path / "o").exists()


def _import_all(src: Path, out: Path) -> np.ndarray:
    assert main(["import", "dicom-rt", str(src), "--out", str(out), "--roi", "tumour=GTV-1"]) == 0
    return np.asarray(nib.load(out / "imagesTr" / "p.nii.gz").dataobj)


def test_an_rle_compressed_series_is_decoded_and_imports_like_the_plain_one(
        tmp_path: Path) -> None:
    from pydicom.uid import RLELossless

    _patient(tmp_path / "plain" / "p")
    shutil.copytree(tmp_path / "plain", tmp_path / "rle")
    _slices(tmp_path / "rle" / "p", lambda d: d.compress(RLELossless))
    assert pydicom.dcmread(tmp_path / "rle" / "p" / "IMG_000.dcm").file_meta \
        .TransferSyntaxUID == RLELossless
    plain = _import_all(tmp_path / "plain", tmp_path / "o1")
    assert np.array_equal(_import_all(tmp_path / "rle", tmp_path / "o2"), plain)


def test_a_truncated_compressed_slice_and_an_undecodable_syntax_are_named(
        tmp_path: Path) -> None:
    from pydicom.pixels import get_decoder
    from pydicom.uid import JPEGLSLossless, RLELossless

    if get_decoder(JPEGLSLossless).is_available:
        pytest.skip("JPEG-LS can be decoded here")
    _patient(tmp_path / "p")
    _slices(tmp_path / "p", lambda d: d.compress(RLELossless))
    path = tmp_path / "p" / "IMG_002.dcm"
    _edit(path, lambda d: setattr(d, "PixelData", d.PixelData[:40]))
    _slices(tmp_path / "p", lambda d: setattr(d.file_meta, "TransferSyntaxUID", JPEGLSLossless),
            (4,))
    lines = [str(p) for p in read_dicom_rt(tmp_path, ROIS)[1] if p.is_error]
    assert len(lines) == 2, lines
    assert "IMG_002.dcm: RLE Lossless pixel data cannot be decoded" in lines[0]
    assert "IMG_004.dcm: pixel data compressed as JPEG-LS Lossless" in lines[1]
    assert "cannot be decoded here (needs" in lines[1]


@pytest.mark.parametrize(("contour", "says"), [
    ([9.0, 9.0, 3.0, 19.0, 19.0, 3.0], "has 2 point(s); a closed contour needs at least 3"),
    ([9.0, 9.0, 3.0], "has 1 point(s)"),
    ([9.0, 9.0, 3.0, 19.0, 19.0, 3.0, 19.0, 9.0, 3.0, 9.0, 19.0, 3.0],
     "contour(s) 3 (slice 1) cross themselves, so the area they enclose is not defined"),
])
def test_degenerate_contours_say_what_is_wrong(tmp_path: Path, contour: list[float],
                                               says: str) -> None:
    uid = write_series(tmp_path / "p")
    write_rtstruct(tmp_path / "p", {"GTV-1": [*tumour(range(2, 4)), contour]}, uid)
    cases, problems, _ = read_dicom_rt(tmp_path, ROIS)
    lines = [str(p) for p in problems]
    assert len(cases) == 1 and len(lines) == 1, lines
    assert lines[0].startswith("WARNING") and says in lines[0] and "% apart" not in lines[0]


def test_the_dicomdir_layout_with_the_rtstruct_in_its_own_series_folder(tmp_path: Path) -> None:
    study = tmp_path / "src" / "PAT1" / "STUDY1"
    uid = write_series(study / "SE1")
    write_rtstruct(study / "SE2", {"GTV-1": tumour(range(1, 4))}, uid)
    (study / "SE2" / "RS.dcm").rename(study / "SE2" / "IM1")  # DICOMDIR names
    cases, problems, _ = read_dicom_rt(tmp_path / "src", ROIS)
    assert problems == [] and [c.case_id for c in cases] == ["PAT1_STUDY1"]
    # an RTSTRUCT whose series is nowhere: the message says how to lay the files out
    write_rtstruct(tmp_path / "src" / "PAT2" / "SE2", {"GTV-1": tumour(range(1, 4))}, "1.2.3.77")
    (line,) = [str(p) for p in read_dicom_rt(tmp_path / "src", ROIS)[1]]
    assert "no other folder here holds the one series it refers to" in line
    assert "in a folder of its own beside that series' folder" in line
