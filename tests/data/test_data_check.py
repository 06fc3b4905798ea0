"""`check_dataset`: one test per kind of bad input, each on a damaged copy of a phantom."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from mbnas.data.check import check_dataset
from mbnas.data.problems import Problem


def find(problems: list[Problem], severity: str, path: Path, *words: str) -> Problem:
    """The problem about ``path`` whose message holds all ``words`` (it must exist)."""
    hits = [p for p in problems if p.severity == severity and p.path == str(path)
            and all(w in p.message for w in words)]
    assert hits, f"no {severity} about {path} with {words}; got:\n" + "\n".join(map(str, problems))
    return hits[0]


def edit_json(root: Path, change) -> None:
    path = root / "dataset.json"
    meta = json.loads(path.read_text())
    change(meta)
    path.write_text(json.dumps(meta))


def errors(problems: list[Problem]) -> list[Problem]:
    return [p for p in problems if p.is_error]


def test_phantoms_are_clean(spleen_msd, prostate_msd, prostate_nnunet):
    for root in (spleen_msd, prostate_msd, prostate_nnunet):
        assert check_dataset(root) == []


def test_missing_folder_and_dataset_json(tmp_path):
    find(check_dataset(tmp_path / "nowhere"), "error", tmp_path / "nowhere", "no such")
    find(check_dataset(tmp_path), "error", tmp_path / "dataset.json", "missing")


def test_invalid_json(copy_dataset, spleen_msd):
    root = copy_dataset(spleen_msd)
    (root / "dataset.json").write_text('{"modality": {"0": "CT"},')
    find(check_dataset(root), "error", root / "dataset.json", "invalid JSON")
    (root / "dataset.json").write_bytes(b"\xff\xfe\x00garbage")
    find(check_dataset(root), "error", root / "dataset.json")


def test_missing_keys(copy_dataset, spleen_msd):
    root = copy_dataset(spleen_msd)
    edit_json(root, lambda m: (m.pop("labels"), m.pop("numTraining")))
    find(check_dataset(root), "error", root / "dataset.json", "missing key", "labels",
         "numTraining")


def test_num_training_mismatch(copy_dataset, spleen_msd):
    root = copy_dataset(spleen_msd)
    edit_json(root, lambda m: m.update(numTraining=7))
    find(check_dataset(root), "error", root / "dataset.json", "numTraining is 7", "4")


def test_image_without_label_msd(copy_dataset, spleen_msd):
    root = copy_dataset(spleen_msd)
    (root / "labelsTr" / "spleen_2.nii.gz").unlink()
    find(check_dataset(root), "error", root / "labelsTr" / "spleen_2.nii.gz", "missing",
         "image without label")


def test_label_without_image_msd(copy_dataset, spleen_msd):
    root = copy_dataset(spleen_msd)
    (root / "imagesTr" / "spleen_3.nii.gz").unlink()
    find(check_dataset(root), "error", root / "imagesTr" / "spleen_3.nii.gz", "missing",
         "label without image")


def test_image_and_label_without_partner_nnunet(copy_dataset, prostate_nnunet):
    root = copy_dataset(prostate_nnunet)
    (root / "labelsTr" / "prostate_01.nii.gz").unlink()
    for c in (0, 1):
        (root / "imagesTr" / f"prostate_02_{c:04d}.nii.gz").unlink()
    problems = check_dataset(root)
    find(problems, "error", root / "imagesTr" / "prostate_01_0000.nii.gz", "image without label")
    find(problems, "error", root / "labelsTr" / "prostate_02.nii.gz", "label without image")


def test_duplicate_case_ids(copy_dataset, spleen_msd):
    root = copy_dataset(spleen_msd)
    edit_json(root, lambda m: (m["training"].append(dict(m["training"][0])),
                               m.update(numTraining=5)))
    find(check_dataset(root), "error", root / "dataset.json", "duplicate case id 'spleen_1'")


def test_stray_files_and_macos_resource_files(copy_dataset, spleen_msd):
    root = copy_dataset(spleen_msd)
    (root / "imagesTr" / "notes.txt").write_text("hello")
    (root / "labelsTr" / "old_case.nii.gz").write_bytes(b"x")
    (root / "imagesTr" / "._spleen_1.nii.gz").write_bytes(b"\x00\x05\x16\x07")
    problems = check_dataset(root)
    find(problems, "warning", root / "imagesTr" / "notes.txt", "stray file")
    find(problems, "warning", root / "labelsTr" / "old_case.nii.gz", "stray file")
    assert not any("._spleen_1" in p.path for p in problems)
    assert not errors(problems)


def test_path_traversal(copy_dataset, spleen_msd):
    root = copy_dataset(spleen_msd)
    edit_json(root, lambda m: (m["training"][0].update(image="../../etc/x.nii.gz"),
                               m["training"][1].update(label="/etc/passwd")))
    problems = check_dataset(root)
    find(problems, "error", root / "dataset.json", "../../etc/x.nii.gz", "outside")
    find(problems, "error", root / "dataset.json", "/etc/passwd", "outside")


def test_entry_pointing_to_missing_file(copy_dataset, spleen_msd):
    root = copy_dataset(spleen_msd)
    edit_json(root, lambda m: m["training"][3].update(image="./imagesTr/spleen_99.nii.gz"))
    find(check_dataset(root), "error", root / "imagesTr" / "spleen_99.nii.gz", "missing")


def test_truncated_gzip(copy_dataset, spleen_msd):
    root = copy_dataset(spleen_msd)
    path = root / "imagesTr" / "spleen_2.nii.gz"
    data = path.read_bytes()
    assert data[:2] == b"\x1f\x8b"  # a real gzip file, cut in the middle
    path.write_bytes(data[: len(data) // 2])
    find(check_dataset(root), "error", path, "truncated or corrupt")


def test_garbage_file(copy_dataset, spleen_msd):
    root = copy_dataset(spleen_msd)
    path = root / "labelsTr" / "spleen_1.nii.gz"
    path.write_bytes(np.random.default_rng(0).bytes(5000))
    find(check_dataset(root), "error", path, "NIfTI")
    path.write_bytes(gzip.compress(b"not a nifti header at all"))
    find(check_dataset(root), "error", path, "NIfTI")


def test_wrong_number_of_channels_msd(copy_dataset, prostate_msd, nii):
    root = copy_dataset(prostate_msd)
    path = root / "imagesTr" / "prostate_01.nii.gz"
    image, affine = nii.read(path)
    nii.write(path, np.ascontiguousarray(image[..., 0]), affine)
    find(check_dataset(root), "error", path, "wrong number of channels", "declares 2",
         "T2, ADC")


def test_wrong_number_of_channels_nnunet(copy_dataset, prostate_nnunet):
    root = copy_dataset(prostate_nnunet)
    (root / "imagesTr" / "prostate_00_0001.nii.gz").unlink()
    extra = root / "imagesTr" / "prostate_01_0002.nii.gz"
    extra.write_bytes((root / "imagesTr" / "prostate_01_0001.nii.gz").read_bytes())
    problems = check_dataset(root)
    find(problems, "error", root / "imagesTr" / "prostate_00_0001.nii.gz",
         "wrong number of channels")
    find(problems, "error", extra, "wrong number of channels", "declares 2")


def test_shape_mismatch(copy_dataset, spleen_msd, nii):
    root = copy_dataset(spleen_msd)
    path = root / "labelsTr" / "spleen_1.nii.gz"
    label, affine = nii.read(path)
    nii.write(path, np.ascontiguousarray(label[:, :-2]), affine)
    find(check_dataset(root), "error", path, "shape", "differs from its image")


def test_spacing_mismatch(copy_dataset, spleen_msd, nii):
    root = copy_dataset(spleen_msd)
    path = root / "labelsTr" / "spleen_2.nii.gz"
    label, affine = nii.read(path)
    affine = affine.copy()
    affine[:3, 2] *= 1.5
    nii.write(path, label, affine)
    find(check_dataset(root), "error", path, "spacing", "differs from its image")


def test_affine_mismatch_is_a_warning(copy_dataset, spleen_msd, nii):
    root = copy_dataset(spleen_msd)
    path = root / "labelsTr" / "spleen_3.nii.gz"
    label, affine = nii.read(path)
    affine = affine.copy()
    affine[:3, 3] += 12.0
    nii.write(path, label, affine)
    problems = check_dataset(root)
    find(problems, "warning", path, "affine", "differs")
    assert not errors(problems)


def test_undeclared_label_values(copy_dataset, spleen_msd, nii):
    root = copy_dataset(spleen_msd)
    path = root / "labelsTr" / "spleen_1.nii.gz"
    label, affine = nii.read(path)
    label = label.copy()
    label[0, 0, 0] = 3
    nii.write(path, label, affine)
    find(check_dataset(root), "error", path, "label values 3", "not declared", "0, 1")


def test_non_integer_label_values(copy_dataset, spleen_msd, nii):
    root = copy_dataset(spleen_msd)
    path = root / "labelsTr" / "spleen_4.nii.gz"
    label, affine = nii.read(path)
    label = label.astype(np.float32)
    label[1, 1, 1] = 0.5
    nii.write(path, label, affine)
    find(check_dataset(root), "error", path, "non-integer", "0.5")


def test_labels_not_consecutive(copy_dataset, spleen_msd):
    root = copy_dataset(spleen_msd)
    edit_json(root, lambda m: m.update(labels={"0": "background", "1": "spleen", "3": "x"}))
    find(check_dataset(root), "error", root / "dataset.json", "not consecutive", "0, 1, 3")


def test_nan_and_inf_in_image(copy_dataset, spleen_msd, nii):
    root = copy_dataset(spleen_msd)
    path = root / "imagesTr" / "spleen_2.nii.gz"
    image, affine = nii.read(path)
    image = image.astype(np.float32)
    image[0, 0, 0] = np.nan
    image[1, 0, 0] = np.inf
    image[2, 0, 0] = -np.inf
    nii.write(path, image, affine)
    find(check_dataset(root), "error", path, "1 NaN", "2 Inf")


def test_nan_in_one_nnunet_channel_names_that_file(copy_dataset, prostate_nnunet, nii):
    root = copy_dataset(prostate_nnunet)
    path = root / "imagesTr" / "prostate_03_0001.nii.gz"
    image, affine = nii.read(path)
    image = image.copy()
    image[3, 3, 3] = np.nan
    nii.write(path, image, affine)
    problems = check_dataset(root)
    find(problems, "error", path, "1 NaN")
    assert len(errors(problems)) == 1


def test_2d_files(copy_dataset, spleen_msd, nii):
    root = copy_dataset(spleen_msd)
    for sub in ("imagesTr", "labelsTr"):
        path = root / sub / "spleen_3.nii.gz"
        array, affine = nii.read(path)
        nii.write(path, np.ascontiguousarray(array[:, :, 0]), affine)
    problems = check_dataset(root)
    find(problems, "error", root / "imagesTr" / "spleen_3.nii.gz", "2D", "3D")
    find(problems, "error", root / "labelsTr" / "spleen_3.nii.gz", "2D", "3D")


def test_background_only_label_is_a_warning(copy_dataset, spleen_msd, nii):
    root = copy_dataset(spleen_msd)
    path = root / "labelsTr" / "spleen_2.nii.gz"
    label, affine = nii.read(path)
    nii.write(path, np.zeros_like(label), affine)
    problems = check_dataset(root)
    find(problems, "warning", path, "only background")
    assert not errors(problems)


@pytest.mark.parametrize("region", [True, False])
def test_nnunet_labels_name_to_id(copy_dataset, prostate_nnunet, region):
    root = copy_dataset(prostate_nnunet)
    labels = {"background": 0, "PZ": 1, "TZ": 2}
    labels.update({"whole": [1, 2]} if region else {"TZ": "two"})
    edit_json(root, lambda m: m.update(labels=labels))
    find(check_dataset(root), "error", root / "dataset.json", "region" if region else "integer")
