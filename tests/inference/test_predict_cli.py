"""`mbnas predict` on the command line: outputs, refusals with exit code 2, folders."""

from __future__ import annotations

import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from mbnas.cli import main
from mbnas.data import make_phantom

pytestmark = pytest.mark.usefixtures("one_thread")


def _run(capsys, *args: object) -> tuple[int, str, str]:
    code = main(["predict", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def _scan(trained, case: str = "spleen_6") -> Path:
    return trained.data_dir / "imagesTr" / f"{case}.nii.gz"


def _assert_refused(code: int, err: str, path: Path, problem: str) -> None:
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert str(path) in lines[0] and problem in lines[0]
    assert "Traceback" not in err


def test_single_scan_is_segmented(trained, tmp_path, capsys):
    code, out, _ = _run(capsys, "--model", trained.model_dir, "--input", _scan(trained),
                        "--output", tmp_path / "out", "--device", "cpu")
    assert code == 0
    written = tmp_path / "out" / "spleen_6.nii.gz"
    assert str(written) in out
    assert nib.load(written).shape == nib.load(_scan(trained)).shape


def test_scan_with_the_wrong_number_of_channels_is_refused(trained, tmp_path, capsys):
    prostate = make_phantom(tmp_path / "prostate", "prostate", n_cases=1, seed=0,
                            shape=(16, 16, 4))
    scan = prostate / "imagesTr" / "prostate_00.nii.gz"
    code, _, err = _run(capsys, "--model", trained.model_dir, "--input", scan,
                        "--output", tmp_path / "out")
    _assert_refused(code, err, scan, "wrong number of channels")
    assert "holds 2 channel(s) but the model expects 1 channel(s) (CT)" in err
    assert not (tmp_path / "out").exists()


def test_2d_scan_is_refused(trained, tmp_path, capsys):
    scan = tmp_path / "slice.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((48, 48), np.float32), np.eye(4)), scan)
    code, _, err = _run(capsys, "--model", trained.model_dir, "--input", scan,
                        "--output", tmp_path / "out")
    _assert_refused(code, err, scan, "is 2D")


def test_truncated_scan_is_refused(trained, tmp_path, capsys):
    data = _scan(trained).read_bytes()
    scan = tmp_path / "cut.nii.gz"
    scan.write_bytes(data[: len(data) // 2])
    code, _, err = _run(capsys, "--model", trained.model_dir, "--input", scan,
                        "--output", tmp_path / "out")
    _assert_refused(code, err, scan, "truncated or corrupt")


def test_missing_model_folder_and_bad_device_are_refused(trained, tmp_path, capsys):
    code, _, err = _run(capsys, "--model", tmp_path, "--input", _scan(trained),
                        "--output", tmp_path / "out")
    _assert_refused(code, err, tmp_path, "no model.json")
    code, _, err = _run(capsys, "--model", trained.model_dir, "--input", _scan(trained),
                        "--output", tmp_path / "out", "--device", "tpu")
    assert code == 2 and "tpu" in err and "Traceback" not in err


def test_output_may_not_overwrite_the_input(trained, tmp_path, capsys):
    shutil.copy(_scan(trained), tmp_path / "spleen_6.nii.gz")
    code, _, err = _run(capsys, "--model", trained.model_dir, "--input", tmp_path,
                        "--output", tmp_path)
    assert code == 2 and "would overwrite an input" in err
    assert nib.load(tmp_path / "spleen_6.nii.gz").get_data_dtype() != np.uint8


def test_folder_continues_past_a_bad_file_and_lists_it(trained, tmp_path, capsys):
    scans = tmp_path / "scans"
    scans.mkdir()
    for case in ("spleen_1", "spleen_2"):
        shutil.copy(_scan(trained, case), scans)
    data = _scan(trained, "spleen_3").read_bytes()
    (scans / "broken.nii.gz").write_bytes(data[: len(data) // 3])
    (scans / "notes.txt").write_text("not a scan")
    code, out, err = _run(capsys, "--model", trained.model_dir, "--input", scans,
                          "--output", tmp_path / "out")
    assert code == 2
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["spleen_1.nii.gz",
                                                                    "spleen_2.nii.gz"]
    assert "wrote 2 label file(s)" in out
    assert "1 scan(s) failed" in err
    assert f"broken: {scans / 'broken.nii.gz'}: truncated or corrupt" in err
    assert "Traceback" not in err


def test_folder_of_good_scans_exits_zero(trained, tmp_path, capsys):
    scans = tmp_path / "scans"
    scans.mkdir()
    shutil.copy(_scan(trained, "spleen_1"), scans)
    code, out, _ = _run(capsys, "--model", trained.model_dir, "--input", scans,
                        "--output", tmp_path / "out")
    assert code == 0 and "wrote 1 label file(s)" in out
    assert (tmp_path / "out" / "spleen_1.nii.gz").is_file()
