"""The real lung CT sample: `mbnas sample lung-ct` and `mbnas import dicom-rt` on real DICOM."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from mbnas.cli import main
from mbnas.data.check import check_dataset
from mbnas.data.formats import read_dataset
from mbnas.data.sample import PYCERR, PYRADIOMICS, fetch_archive
from mbnas.errors import DatasetError


@pytest.fixture(scope="session")
def pycerr_dicom(lung_archives: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The four pycerr patient folders (DICOM CT + RTSTRUCT), extracted from the wheel."""
    out = tmp_path_factory.mktemp("pycerr")
    prefix = "cerr/datasets/radiomics_phantom_dicom/"
    with zipfile.ZipFile(lung_archives / PYCERR.archive) as z:
        z.extractall(out, [m for m in z.namelist() if m.startswith(prefix + "pat_")])
    return out / prefix


def test_the_sample_is_check_clean_with_six_cases_two_sites_and_provenance(
        lung_sample: Path, capsys) -> None:
    dataset = read_dataset(lung_sample)
    assert len(dataset.cases) == 6 and dataset.label_names == {0: "background", 1: "tumour"}
    assert {c.site for c in dataset.cases} == {PYCERR.site, PYRADIOMICS.site}
    provenance = json.loads((lung_sample / "provenance.json").read_text())
    assert {s["sha256"] for s in provenance["sources"]} == {PYCERR.sha256, PYRADIOMICS.sha256}
    files = provenance["files"]
    assert {f["package"] for f in files} == {"pycerr", "pyradiomics"}
    assert all(len(f["sha256"]) == 64 for f in files) and len(files) > 200
    assert "NonCommercial" in (lung_sample / "LICENSE_pycerr_cases.txt").read_text()
    assert main(["check", str(lung_sample)]) == 0  # no error
    out = capsys.readouterr().out
    assert "0 error(s), 0 warning(s) (6 case(s)" in out
    assert "--target-spacing" in out  # 0.57 vs 0.98 mm, fields of view 133-321 mm


def test_a_second_run_does_no_work_and_needs_no_network(lung_sample: Path,
                                                         tmp_path: Path, capsys) -> None:
    before = (lung_sample / "dataset.json").stat().st_mtime_ns
    # an empty cache: nothing would be found there, so nothing may be needed
    assert main(["sample", "lung-ct", "--out", str(lung_sample), "--cache", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "CC BY-NC 3.0" in out and "nothing to do" in out
    assert (lung_sample / "dataset.json").stat().st_mtime_ns == before
    assert not (tmp_path / "downloads").exists()


def test_without_the_registry_the_download_fails_in_one_line(tmp_path: Path,
                                                              monkeypatch) -> None:
    for key, value in {"PIP_CONFIG_FILE": "/dev/null", "PIP_INDEX_URL": "http://127.0.0.1:9/",
                       "PIP_RETRIES": "0", "PIP_TIMEOUT": "1", "PIP_FIND_LINKS": ""}.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(DatasetError) as info:
        fetch_archive(PYCERR, tmp_path / "downloads", say=lambda _line: None)
    message = str(info.value)
    assert "\n" not in message and "pip download" in message and "pycerr==2.5.1" in message
    assert not list((tmp_path / "downloads").glob("*.whl"))


def _contour_mask(rs_path: Path, affine: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """The RTSTRUCT's GTV-1 filled independently: matplotlib point-in-polygon at voxel
    centres, on the NIfTI's own grid (DICOM LPS -> NIfTI RAS), contours XOR-ed."""
    import pydicom
    from matplotlib.path import Path as Polygon

    ds = pydicom.dcmread(rs_path)
    inverse = np.linalg.inv(affine)
    mask = np.zeros(shape, bool)
    ii, jj = np.meshgrid(np.arange(shape[0]), np.arange(shape[1]), indexing="ij")
    centres = np.column_stack([ii.ravel(), jj.ravel()])
    for contour in ds.ROIContourSequence[0].ContourSequence:
        lps = np.asarray(contour.ContourData, float).reshape(-1, 3)
        ras = np.column_stack([-lps[:, 0], -lps[:, 1], lps[:, 2], np.ones(len(lps))])
        ijk = (inverse @ ras.T).T[:, :3]
        k = int(round(ijk[0, 2]))
        inside = Polygon(ijk[:, :2]).contains_points(centres).reshape(shape[:2])
        mask[:, :, k] ^= inside
    return mask


def test_import_dicom_rt_masks_match_the_contours(pycerr_dicom: Path, tmp_path: Path) -> None:
    out = tmp_path / "imported"
    assert main(["import", "dicom-rt", str(pycerr_dicom), "--out", str(out),
                 "--roi", "tumour=gtv-1"]) == 0
    assert [p for p in check_dataset(out) if p.is_error] == []
    for patient in sorted(pycerr_dicom.glob("pat_*")):
        label = nib.load(out / "labelsTr" / f"{patient.name}.nii.gz")
        ours = np.asarray(label.dataobj) > 0
        (rs,) = patient.glob("*RS*.dcm")
        reference = _contour_mask(rs, label.affine, ours.shape)
        dice = 2 * (ours & reference).sum() / (ours.sum() + reference.sum())
        assert dice > 0.98, (patient.name, dice)


@pytest.mark.slow
def test_search_evaluate_report_predict_on_the_real_sample(lung_sample: Path,
                                                           tmp_path: Path) -> None:
    """The whole tool on real patients, at the tiniest setting; with foreground
    oversampling and a target spacing that keeps the largest field of view whole."""
    tiny = ["--protocol", "quick", "--epochs", "1", "--image-size", "32", "--folds", "2",
            "--device", "cpu", "--threads", "1", "--target-spacing", "10",
            "--foreground-fraction", "0.33"]
    cache = ["--cache", str(tmp_path / "cache")]
    run = tmp_path / "search"
    assert main(["search", str(lung_sample), *tiny, *cache, "--budget", "1", "--start", "unet",
                 "--out", str(run)]) == 0
    evaluation = tmp_path / "evaluation"
    assert main(["evaluate", str(run), "--baselines", "none", "--seeds", "1", "--folds", "2",
                 "--epochs", "1", "--device", "cpu", "--threads", "1",
                 "--out", str(evaluation)]) == 0
    report = tmp_path / "report"
    assert main(["report", "--evaluation", str(evaluation), "--out", str(report)]) == 0
    empty = json.loads((report / "empty_validation.json").read_text())
    assert empty["cases"] == 6 and 0 < empty["empty_slices"] < empty["slices"]
    assert "Empty validation data" in (report / "report.html").read_text()
    assert "CC BY-NC 3.0" in (report / "report.html").read_text()  # the cases' licence
    case = read_dataset(lung_sample).cases[-1]  # a full-field 512 x 512 scan
    model = json.loads((run / "model" / "model.json").read_text())
    assert model["target_spacing"] == 10.0
    assert main(["predict", "--model", str(run / "model"), "--input", str(case.images[0]),
                 "--output", str(tmp_path / "pred")]) == 0
    predicted = nib.load(tmp_path / "pred" / case.images[0].name)
    assert predicted.shape == nib.load(case.images[0]).shape
