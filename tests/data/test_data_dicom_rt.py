"""`mbnas import dicom-rt` on DICOM written with pydicom: conversion and every listed error."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from dicom_factory import SPACING, square, tumour, write_rtstruct, write_series

from mbnas.cli import main
from mbnas.data.check import check_dataset
from mbnas.data.dicom_rt import import_dicom_rt, parse_rois, read_dicom_rt
from mbnas.errors import ConfigError, DatasetError

ROIS = parse_rois("tumour=GTV-1|gtv")


def _patient(folder: Path, rois: dict | None = None, **series) -> str:  # noqa: ANN003
    uid = write_series(folder, **series)
    write_rtstruct(folder, rois if rois is not None else {"GTV-1": tumour(range(1, 4))}, uid)
    return uid


def _errors(source: Path, rois=ROIS) -> list[str]:  # noqa: ANN001
    _, problems, _ = read_dicom_rt(source, rois)
    return [str(p) for p in problems if p.is_error]


def test_two_patients_convert_to_a_check_clean_msd_folder(tmp_path: Path) -> None:
    _patient(tmp_path / "src" / "a")
    _patient(tmp_path / "src" / "b", {"gtv": tumour(range(2, 5))})  # an alias, another case
    out, problems, checks = import_dicom_rt(tmp_path / "src", tmp_path / "out", ROIS,
                                            site="s1")
    assert problems == []
    assert [p for p in check_dataset(out) if p.is_error] == []
    label = nib.load(out / "labelsTr" / "a.nii.gz")
    assert np.allclose(nib.affines.voxel_sizes(label.affine), (SPACING[0], SPACING[1],
                                                               SPACING[2]))
    # 5 x 5 voxels (centres 5..9) on each of slices 1..3, as the rectangles enclose
    assert int(np.asarray(label.dataobj).sum()) == 3 * 25
    assert all(c.mask_voxels == pytest.approx(c.contour_voxels) for c in checks)
    meta = (out / "dataset.json").read_text()
    assert '"tumour"' in meta and '"site": "s1"' in meta


def test_a_missing_roi_is_named_with_the_rois_the_file_has(tmp_path: Path) -> None:
    _patient(tmp_path / "p", {"Lung": tumour(range(1, 3))})
    (line,) = _errors(tmp_path)
    assert "RS.dcm" in line and "'tumour'" in line and "not found" in line and "Lung" in line


def test_a_broken_file_is_listed_by_name(tmp_path: Path) -> None:
    _patient(tmp_path / "p")
    (tmp_path / "p" / "IMG_999.dcm").write_bytes(b"not dicom at all" * 10)
    good = tmp_path / "p" / "IMG_000.dcm"
    truncated = tmp_path / "p" / "IMG_998.dcm"
    truncated.write_bytes(good.read_bytes()[:-200])
    lines = _errors(tmp_path)
    assert any("IMG_999.dcm" in ln and "not a readable DICOM" in ln for ln in lines)
    assert any("IMG_998.dcm" in ln and "truncated" in ln for ln in lines)


def test_a_series_split_in_two_is_refused(tmp_path: Path) -> None:
    _patient(tmp_path / "p")
    write_series(tmp_path / "p", n_slices=3, origin_z=100.0, prefix="B")  # a second series UID
    (line,) = _errors(tmp_path)
    assert "2 image series in one folder" in line


def test_a_gap_in_a_series_is_refused(tmp_path: Path) -> None:
    _patient(tmp_path / "p", n_slices=8, skip=(4,))
    (line,) = _errors(tmp_path)
    assert "not evenly spaced" in line and "IMG_003.dcm" in line


def test_contours_outside_the_image_are_refused(tmp_path: Path) -> None:
    _patient(tmp_path / "p", {"GTV-1": [square(9, 9, 19, 19, 3.0),
                                        square(20, 20, 60, 60, 6.0)]})
    (line,) = _errors(tmp_path)
    assert "1 contour(s) lie outside the image" in line


def test_overlapping_rois_are_refused(tmp_path: Path) -> None:
    _patient(tmp_path / "p", {"GTV-1": tumour(range(1, 3)),
                              "Lung": [square(5, 5, 15, 15, 3.0)]})
    (line,) = _errors(tmp_path, parse_rois("tumour=GTV-1,lung"))
    assert "'tumour' and 'lung' overlap" in line


def test_mixed_modalities_are_refused(tmp_path: Path) -> None:
    _patient(tmp_path / "p")
    write_series(tmp_path / "p", modality="MR", origin_z=50.0, prefix="MR")
    (line,) = _errors(tmp_path)
    assert "mixed modalities" in line and "CT" in line and "MR" in line


def test_an_rtstruct_of_another_series_and_a_missing_rtstruct(tmp_path: Path) -> None:
    write_series(tmp_path / "a")
    write_rtstruct(tmp_path / "a", {"GTV-1": tumour(range(1, 3))}, "1.2.3.999")
    write_series(tmp_path / "b")
    lines = _errors(tmp_path)
    assert any("refers to series" in ln and str(tmp_path / "a") in ln for ln in lines)
    assert any("no RTSTRUCT" in ln and str(tmp_path / "b") in ln for ln in lines)


def test_a_mask_that_differs_from_its_contour_area_is_reported(tmp_path: Path) -> None:
    # a thin sliver: its area is under a voxel but the filling takes whole voxels
    _patient(tmp_path / "p", {"GTV-1": [square(9, 9, 19, 10.2, 3.0)]})
    _, problems, checks = read_dicom_rt(tmp_path, ROIS)
    assert checks[0].difference > 0.05
    assert any(not p.is_error and "apart" in str(p) for p in problems)


@pytest.mark.parametrize("text", ["", "a,,b", "=x", "a=x,A=y", "background"])
def test_bad_roi_lists_are_refused(text: str) -> None:
    with pytest.raises(ConfigError, match="--roi"):
        parse_rois(text)


def test_the_cli_lists_every_problem_and_exits_2(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    _patient(tmp_path / "src" / "a", {"Lung": tumour(range(1, 3))})
    _patient(tmp_path / "src" / "b", n_slices=8, skip=(4,))
    code = main(["import", "dicom-rt", str(tmp_path / "src"), "--out", str(tmp_path / "o"),
                 "--roi", "tumour=GTV-1"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: cannot import") and "Traceback" not in err
    assert "not found" in err and "not evenly spaced" in err
    assert not (tmp_path / "o").exists()  # nothing half-written


def test_an_import_refuses_to_overwrite_a_foreign_folder(tmp_path: Path) -> None:
    _patient(tmp_path / "src" / "a")
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "mine.txt").write_text("x")
    with pytest.raises(ConfigError, match="not empty"):
        import_dicom_rt(tmp_path / "src", tmp_path / "o", ROIS)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no DICOM"):
        import_dicom_rt(tmp_path / "empty", tmp_path / "o2", ROIS)


def test_a_killed_import_leaves_no_half_folder_and_the_next_run_cleans_up(
        tmp_path: Path) -> None:
    _patient(tmp_path / "src" / "a")
    killed = tmp_path / ".o.abc12345.tmp"  # what a kill leaves: marked as the import's
    (killed / "imagesTr").mkdir(parents=True)
    (killed / ".mbnas_import_tmp").write_text("123")
    out, _, _ = import_dicom_rt(tmp_path / "src", tmp_path / "o", ROIS)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".o.lock", "o", "src"]
    again, _, _ = import_dicom_rt(tmp_path / "src", out, ROIS)  # an earlier import: replaced
    assert sorted(p.name for p in again.iterdir()) == ["dataset.json", "imagesTr", "labelsTr"]
