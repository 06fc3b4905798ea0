"""Which inputs `mbnas predict` accepts, how files are grouped, and the label file written."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from mbnas.data import make_phantom
from mbnas.errors import ConfigError
from mbnas.inference import ScanError, find_scans, read_scan
from mbnas.inference.scans import Scan, write_label

AFFINE = np.array([[-0.7, 0.05, 0, 10], [0.05, 0.7, 0, -5], [0, 0, 5, 3], [0, 0, 0, 1.0]])


def _save(path: Path, array: np.ndarray, affine: np.ndarray = AFFINE) -> Path:
    nib.save(nib.Nifti1Image(array, affine), path)
    return path


@pytest.fixture(scope="module")
def prostate(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("scans")
    msd = make_phantom(root / "msd", "prostate", n_cases=2, seed=0, shape=(16, 16, 4))
    nnunet = make_phantom(root / "nnunet", "prostate", n_cases=2, seed=0, shape=(16, 16, 4),
                          fmt="nnunet")
    return msd / "imagesTr", nnunet / "imagesTr"


def test_nnunet_channel_files_are_grouped_into_cases(prostate):
    msd, nnunet = prostate
    scans = find_scans(nnunet)
    assert [(s.name, [f.name for f in s.files]) for s in scans] == [
        ("prostate_00", ["prostate_00_0000.nii.gz", "prostate_00_0001.nii.gz"]),
        ("prostate_01", ["prostate_01_0000.nii.gz", "prostate_01_0001.nii.gz"])]
    for grouped, single in zip(scans, find_scans(msd)):
        a, b = read_scan(grouped, ("T2", "ADC")), read_scan(single, ("T2", "ADC"))
        np.testing.assert_array_equal(a.image, b.image)
        np.testing.assert_allclose(a.affine, b.affine)


def test_files_that_are_not_all_channel_files_are_one_scan_each(tmp_path):
    for name in ("a_0000.nii.gz", "b.nii", "c_0001.nii.gz"):
        _save(tmp_path / name, np.zeros((4, 4, 2), np.float32))
    (tmp_path / "readme.txt").write_text("ignored")
    assert [s.name for s in find_scans(tmp_path)] == ["a_0000", "b", "c_0001"]


def test_missing_channel_file_and_mismatched_grids_are_refused(prostate, tmp_path):
    _, nnunet = prostate
    (tmp_path / "one").mkdir()
    first = nnunet / "prostate_00_0000.nii.gz"
    (tmp_path / "one" / first.name).write_bytes(first.read_bytes())
    [scan] = find_scans(tmp_path / "one")
    with pytest.raises(ScanError, match=r"prostate_00: channel files _0000 found but the "
                                        r"model expects 2 channel\(s\) \(T2, ADC\)"):
        read_scan(scan, ("T2", "ADC"))
    (tmp_path / "two").mkdir()
    _save(tmp_path / "two" / "x_0000.nii.gz", np.zeros((4, 4, 2), np.float32))
    _save(tmp_path / "two" / "x_0001.nii.gz", np.zeros((4, 5, 2), np.float32))
    [scan] = find_scans(tmp_path / "two")
    with pytest.raises(ScanError, match=r"x_0001.nii.gz: shape \(4, 5, 2\) differs"):
        read_scan(scan, ("T2", "ADC"))


def test_single_channel_scan_for_a_two_channel_model_gets_a_hint(tmp_path):
    path = _save(tmp_path / "t2.nii.gz", np.zeros((4, 4, 2), np.float32))
    with pytest.raises(ScanError, match="holds 1 channel.*CASE_0000.nii.gz"):
        read_scan(find_scans(path)[0], ("T2", "ADC"))


def test_nan_values_are_refused(tmp_path):
    data = np.zeros((4, 4, 2), np.float32)
    data[0, 0, 0] = np.nan
    path = _save(tmp_path / "nan.nii.gz", data)
    with pytest.raises(ScanError, match="nan.nii.gz: image contains NaN"):
        read_scan(find_scans(path)[0], ("CT",))


def test_inputs_that_are_not_scans_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        find_scans(tmp_path / "absent.nii.gz")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ScanError, match="notes.txt: not a NIfTI file"):
        find_scans(tmp_path / "notes.txt")
    with pytest.raises(ConfigError, match="holds no NIfTI file"):
        find_scans(tmp_path)
    _save(tmp_path / "a.nii", np.zeros((4, 4, 2), np.float32))
    _save(tmp_path / "a.nii.gz", np.zeros((4, 4, 2), np.float32))
    with pytest.raises(ConfigError, match="both be segmented into a.nii.gz"):
        find_scans(tmp_path)


def test_label_file_keeps_the_scans_geometry_but_not_its_scaling(tmp_path):
    img = nib.Nifti1Image(np.arange(48, dtype=np.int16).reshape(4, 3, 4), AFFINE)
    img.header.set_slope_inter(2.0, -1024.0)
    img.header.set_qform(AFFINE, code=1)
    img.header.set_sform(AFFINE, code=1)
    nib.save(img, tmp_path / "ct.nii.gz")
    scan = read_scan(find_scans(tmp_path / "ct.nii.gz")[0], ("CT",))
    assert scan.image.shape == (4, 3, 4, 1)
    label = (np.arange(48).reshape(4, 3, 4) % 3).astype(np.uint8)
    write_label(label, Scan(scan.image, scan.affine, scan.header), tmp_path / "out.nii.gz")
    out = nib.load(tmp_path / "out.nii.gz")
    assert out.get_data_dtype() == np.uint8
    np.testing.assert_array_equal(np.asanyarray(out.dataobj), label)
    np.testing.assert_allclose(out.affine, AFFINE)
    assert out.header.get_qform(coded=True)[1] == 1 == out.header.get_sform(coded=True)[1]
