"""Labelled voxels and the ``target_spacing`` window (issue 35): the window is placed to
keep each case's labels, what it still drops is counted, warned about and, when a case
loses everything, refused unless ``--allow-cropped-labels``; and the README's real-CT
recipe keeps every tumour of the lung sample."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mbnas.cli import main
from mbnas.data.msd_write import MsdCase, write_msd
from mbnas.data.preprocess import PreprocessConfig, load_slices
from mbnas.data.spacing import centre_start, foreground_start
from mbnas.errors import DatasetError

SIZE = 16  # the window: 16 px at 1 mm


def _dataset(root: Path, labels: dict[str, np.ndarray]) -> Path:
    """An MSD folder of 64 x 64 x 4 CT cases at 1 mm with the given label volumes (Z, Y, X)."""
    sitk = pytest.importorskip("SimpleITK")
    rng = np.random.default_rng(0)
    cases = []
    for case_id, label in labels.items():
        image = sitk.GetImageFromArray(rng.normal(0, 100, label.shape).astype(np.int16)
                                       + 300 * label.astype(np.int16))
        lab = sitk.GetImageFromArray(label.astype(np.uint8))
        for im in (image, lab):
            im.SetSpacing((1.0, 1.0, 3.0))
        cases.append(MsdCase(case_id, image, lab))
    return write_msd(root, cases, ["background", "tumour"], "CT", "Crop", {"command": "test"})


def _blob(corners: list[tuple[int, int]], side: int = 4) -> np.ndarray:
    label = np.zeros((4, 64, 64), np.uint8)
    for y, x in corners:
        label[1:3, y:y + side, x:x + side] = 1
    return label


def test_the_window_moves_as_little_as_needed_to_hold_the_labels() -> None:
    labels = np.zeros((2, 40, 40), np.uint8)
    assert foreground_start(labels, (16, 16)) == centre_start((40, 40), (16, 16)) == (12, 12)
    labels[1, 2:6, 30:34] = 1  # top right: the centred window misses it
    assert foreground_start(labels, (16, 16)) == (2, 18)
    labels[:] = 0
    labels[0, 14:20, 14:20] = 1  # inside the centred window: it stays
    assert foreground_start(labels, (16, 16)) == (12, 12)
    assert foreground_start(np.ones((1, 8, 40), np.uint8), (16, 16)) == (-4, 12)  # padded


def test_an_off_centre_tumour_is_kept_and_counted(tmp_path: Path) -> None:
    root = _dataset(tmp_path / "Task01_Crop", {"off_1": _blob([(2, 2)]),
                                                  "mid_2": _blob([(30, 30)])})
    data = load_slices(root, tmp_path / "cache", PreprocessConfig(size=SIZE, target_spacing=1))
    for case in data.cases:
        assert case.foreground == (32, 32)  # 2 slices x 4 x 4, all kept
        assert int(data.labels[data.case_slices(case.case_id)].sum()) == 32
    crops = {c.case_id: c.crop for c in data.cases}
    assert crops["mid_2"] == centre_start((64, 64), (SIZE, SIZE))  # already inside: stays
    assert crops["off_1"] != crops["mid_2"]  # moved to the corner's tumour


def test_a_case_that_loses_labels_is_warned_about_naming_a_setting(tmp_path: Path) -> None:
    # a 24 mm tumour in a 16 mm window: a third of it falls outside whatever the placement
    root = _dataset(tmp_path / "Task01_Crop", {"big_1": _blob([(20, 20)], side=24)})
    with pytest.warns(RuntimeWarning, match=r"big_1: \d+ of 1152 labelled voxels") as said:
        data = load_slices(root, tmp_path / "cache",
                           PreprocessConfig(size=SIZE, target_spacing=1))
    text = str(said[0].message)
    assert "--target-spacing 1.50" in text and "--image-size 32" in text
    assert 0 < data.cases[0].foreground[0] < 1152
    assert (tmp_path / "cache").is_dir()


def test_a_case_that_loses_all_its_labels_is_an_error_unless_allowed(tmp_path: Path,
                                                                     capsys) -> None:
    # two small tumours in opposite corners: a window centred on their box holds neither
    root = _dataset(tmp_path / "Task01_Crop", {"apart_1": _blob([(0, 0), (60, 60)]),
                                                  "mid_2": _blob([(30, 30)])})
    config = PreprocessConfig(size=SIZE, target_spacing=1)
    with pytest.raises(DatasetError, match="apart_1: 64 of 64 labelled voxels .* "
                                           "--allow-cropped-labels"):
        load_slices(root, tmp_path / "cache", config)
    argv = ["preprocess", str(root), "--cache", str(tmp_path / "cache"), "--size", str(SIZE),
            "--target-spacing", "1", "--quiet"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "apart_1" in err and "Traceback" not in err
    with pytest.warns(RuntimeWarning, match="apart_1"):
        assert main([*argv, "--allow-cropped-labels"]) == 0
    assert "warning: cropped labels: apart_1" in capsys.readouterr().out


def test_the_readme_ct_recipe_keeps_every_tumour_of_the_lung_sample(lung_sample: Path,
                                                                    tmp_path: Path) -> None:
    # `mbnas search data/LungCT --protocol quick --target-spacing 2.5 ...`: 32 px at 2.5 mm
    # (a centred window dropped the whole tumour of two cases, 58-68 mm off-centre)
    with pytest.warns(RuntimeWarning) as said:
        data = load_slices(lung_sample, tmp_path / "cache",
                           PreprocessConfig(size=32, target_spacing=2.5))
    assert len(data.cases) == 6
    for case in data.cases:
        kept, total = case.foreground
        assert total > 0 and kept >= 0.9 * total, (case.case_id, kept, total)
        assert int(np.count_nonzero(data.labels[data.case_slices(case.case_id)])) == kept
    # only the tumour wider than the 80 mm window (98 mm) loses its edge, and says so
    warned = [str(w.message) for w in said if "cropped labels" in str(w.message)]
    assert len(warned) == 1 and "pycerr_pat_1" in warned[0], warned


def test_the_original_grid_puts_a_window_back_where_it_lay() -> None:
    import torch

    from mbnas.inference.segment import to_scan_grid

    prob = torch.zeros(1, 2, 4, 4)
    prob[:, 0] = 1.0
    prob[0, 1, 0, 0] = 2.0  # foreground at the window's first pixel
    labels = to_scan_grid(prob, (8, 8), window=(8, 8), start=(3, 1))[0]
    assert torch.nonzero(labels).tolist() == [[3, 1]]
    assert torch.nonzero(to_scan_grid(prob, (8, 8), window=(8, 8))[0]).tolist() == [[2, 2]]


def test_the_report_tells_empty_in_the_scan_from_emptied_by_preprocessing() -> None:
    from mbnas.commands.report.empty import emptied_by_preprocessing, empty_html
    from mbnas.data.slices import CaseInfo

    cases = {"scan_1": CaseInfo("scan_1", (1, 1, 1), crop=(0, 0), foreground=(0, 0)),
             "cropped_2": CaseInfo("cropped_2", (1, 1, 1), crop=(0, 0), foreground=(0, 48)),
             "fit_3": CaseInfo("fit_3", (1, 1, 1))}
    assert {c: emptied_by_preprocessing(i) for c, i in cases.items()} == \
        {"scan_1": 0, "cropped_2": 48, "fit_3": 0}
    fold = {"fold": 0, "cases": 3, "slices": 30, "empty_slices": 20,
            "empty_cases": ["cropped_2", "scan_1"], "emptied_cases": {"cropped_2": 48},
            "few_slice_cases": {}}
    html = empty_html({"folds": [fold], "slices": 30, "empty_slices": 20,
                       "empty_fraction": 2 / 3, "cases": 3, "empty_cases": 2,
                       "few_slice_cases": 0, "few_slices": 2,
                       "cropped_cases": {"big_4": 0.06}})
    assert "cropped part of the labelled voxels of 1 case(s): big_4 (6 %)" in html
    assert "1 empty in the scan, 1 emptied by preprocessing" in html
    assert "cropped_2 (emptied by preprocessing: 48 labelled voxels cropped)" in html
    assert "scan_1 (empty in the scan)" in html


def test_a_report_of_the_lung_sample_carries_its_licence(lung_sample: Path) -> None:
    from types import SimpleNamespace

    from mbnas.commands.report.run import dataset_info

    info = dataset_info(SimpleNamespace(data_dir=str(lung_sample)), None)  # type: ignore[arg-type]
    assert "CC BY-NC 3.0" in info["licence"]


def test_check_and_dry_run_recommend_a_spacing_for_the_image_size(lung_sample: Path,
                                                                  tmp_path: Path,
                                                                  capsys) -> None:
    assert main(["check", str(lung_sample), "--image-size", "32"]) == 0
    at_32 = capsys.readouterr().out
    assert "fits in 32 px" in at_32 and "--target-spacing 10.03" in at_32
    assert main(["check", str(lung_sample)]) == 0
    assert "fits in 128 px" in capsys.readouterr().out  # the paper's size by default
    assert main(["search", str(lung_sample), "--protocol", "quick", "--image-size", "32",
                 "--out", str(tmp_path / "run"), "--dry-run"]) == 0
    said = capsys.readouterr().out
    assert "# recommendation:" in said and "fits in 32 px" in said
    assert not (tmp_path / "run").exists()
