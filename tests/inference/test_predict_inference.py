"""Segmenting scans: training's preprocessing, geometry of the output, ensembles, formats."""

from __future__ import annotations

import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mbnas.data import make_phantom
from mbnas.data.orientation import from_canonical, to_canonical
from mbnas.inference import (
    ModelFolder,
    ModelFolderError,
    Segmenter,
    export_model,
    load_model_folder,
    predict,
    prepare_slices,
)
from mbnas.spaces.mbnas import build_model, preset
from mbnas.store import load_weights, save_weights

pytestmark = pytest.mark.usefixtures("one_thread")


def _read(path: Path) -> tuple[np.ndarray, np.ndarray]:
    img = nib.load(path)
    return np.asanyarray(img.dataobj), img.affine


def _dice(pred: np.ndarray, ref: np.ndarray) -> float:
    return float(2 * np.sum((pred == 1) & (ref == 1)) / (np.sum(pred == 1) + np.sum(ref == 1)))


def test_prediction_of_a_held_out_scan_overlaps_its_label(trained, tmp_path):
    scan = trained.data_dir / "imagesTr" / f"{trained.held_out}.nii.gz"
    summary = predict(trained.model_dir, scan, tmp_path / "out", device="cpu")
    assert summary.written == [tmp_path / "out" / f"{trained.held_out}.nii.gz"]
    assert not summary.failed
    out = nib.load(summary.written[0])
    image = nib.load(scan)
    assert out.shape == image.shape
    np.testing.assert_allclose(out.affine, image.affine)
    assert out.get_data_dtype() == np.uint8
    pred = np.asanyarray(out.dataobj)
    ref, _ = _read(trained.data_dir / "labelsTr" / f"{trained.held_out}.nii.gz")
    assert set(np.unique(pred)) <= {0, 1}
    assert _dice(pred, ref) > 0.7, f"Dice {_dice(pred, ref):.3f} (val Dice in training: " \
                                   f"{trained.val_dice:.3f})"


def test_prediction_preprocesses_exactly_like_training(trained):
    model = load_model_folder(trained.model_dir)
    for case in ("spleen_1", trained.held_out):
        image, affine = _read(trained.data_dir / "imagesTr" / f"{case}.nii.gz")
        slices = prepare_slices(image[..., None], affine, model)
        cached = trained.slices.images[trained.slices.case_slices(case)]
        np.testing.assert_allclose(slices, cached, rtol=1e-5, atol=1e-5)


def test_mr_channels_are_zscored_per_case_like_training(tmp_path):
    from mbnas.data import PreprocessConfig, load_slices
    from mbnas.inference import normalisation_from_cache

    root = make_phantom(tmp_path / "prostate", "prostate", n_cases=2, seed=0,
                        shape=(24, 24, 6))
    data = load_slices(root, tmp_path / "cache", PreprocessConfig(size=16))
    norm = normalisation_from_cache(root, tmp_path / "cache", 16)
    model = ModelFolder(tmp_path, preset("unet"), 2, 3, 4, 16, data.label_names,
                        data.channel_names, tuple(norm[c] for c in data.channel_names), ())
    case = data.case_ids[1]
    image, affine = _read(root / "imagesTr" / f"{case}.nii.gz")
    np.testing.assert_allclose(prepare_slices(image, affine, model),
                               data.images[data.case_slices(case)], rtol=1e-5, atol=1e-5)


def _reoriented(src: Path, dst: Path, axes: tuple[int, int, int], flips: tuple[bool, ...]
                ) -> None:
    """The same scan stored in another voxel order: world positions unchanged."""
    image, affine = _read(src)
    n = np.array(image.shape)
    perm = np.zeros((4, 4))
    perm[3, 3] = 1
    for new, old in enumerate(axes):  # new voxel index -> old voxel index
        sign = -1 if flips[new] else 1
        perm[old, new] = sign
        perm[old, 3] = n[old] - 1 if flips[new] else 0
    data = image.transpose(axes)
    data = data[tuple(slice(None, None, -1) if f else slice(None) for f in flips)]
    nib.save(nib.Nifti1Image(np.ascontiguousarray(data), affine @ perm), dst)


def test_scan_stored_in_another_orientation_gets_the_same_segmentation(trained, tmp_path):
    scan = trained.data_dir / "imagesTr" / f"{trained.held_out}.nii.gz"
    (tmp_path / "in").mkdir()
    shutil.copy(scan, tmp_path / "in" / "original.nii.gz")
    _reoriented(scan, tmp_path / "in" / "flipped.nii.gz", (0, 1, 2), (True, False, False))
    _reoriented(scan, tmp_path / "in" / "permuted.nii.gz", (1, 0, 2), (False, True, True))
    summary = predict(trained.model_dir, tmp_path / "in", tmp_path / "out", device="cpu")
    assert not summary.failed and len(summary.written) == 3
    original, affine = _read(tmp_path / "out" / "original.nii.gz")
    assert original.any()
    flipped, flipped_affine = _read(tmp_path / "out" / "flipped.nii.gz")
    np.testing.assert_allclose(flipped_affine, nib.load(tmp_path / "in" / "flipped.nii.gz").affine)
    np.testing.assert_array_equal(flipped[::-1], original)
    permuted, _ = _read(tmp_path / "out" / "permuted.nii.gz")
    np.testing.assert_array_equal(permuted[:, ::-1, ::-1].transpose(1, 0, 2), original)


def test_ensemble_averages_the_softmax_of_every_network(trained, tmp_path):
    torch.manual_seed(1)
    other = build_model(preset("unet"), 1, 2, base_channels=8)
    second = save_weights(other.state_dict(), tmp_path / "fold1_seed0.pt")
    meta = load_model_folder(trained.model_dir)
    norm = dict(zip(meta.channel_names, meta.normalisation))
    export_model(tmp_path / "ensemble", architecture=preset("unet").to_dict(), in_channels=1,
                 n_classes=2, base_channels=8, image_size=32, label_names=meta.label_names,
                 channel_names=meta.channel_names, normalisation=norm,
                 weights=[trained.weights, second])
    model = load_model_folder(tmp_path / "ensemble")
    image, affine = _read(trained.data_dir / "imagesTr" / f"{trained.held_out}.nii.gz")
    got = Segmenter(model, "cpu").segment(image[..., None], affine)
    # Reference: whole-volume probabilities of each network, averaged, then resized.
    x = torch.from_numpy(prepare_slices(image[..., None], affine, model))
    probs = []
    for path in model.weights:
        net = build_model(preset("unet"), 1, 2, base_channels=8)
        net.load_state_dict(load_weights(path))
        with torch.no_grad():
            probs.append(net.eval()(x).softmax(1))
    grid = to_canonical(image, affine)[0].shape[:2]
    mean = F.interpolate((probs[0] + probs[1]) / 2, size=grid, mode="bilinear",
                         align_corners=False, antialias=True)
    expected = from_canonical(mean.argmax(1).numpy().astype(np.uint8).transpose(1, 2, 0),
                              affine)
    np.testing.assert_array_equal(got, expected)
    alone = Segmenter(load_model_folder(trained.model_dir), "cpu").segment(image[..., None],
                                                                           affine)
    assert (alone != got).any(), "the second network must change the ensemble's output"


def test_weights_that_do_not_fit_the_architecture_are_refused(trained, tmp_path):
    model = load_model_folder(trained.model_dir)
    wrong = ModelFolder(**{**model.__dict__, "base_channels": 4})
    with pytest.raises(ModelFolderError, match="fold0_seed0.pt: the weights do not fit"):
        Segmenter(wrong, "cpu")


def test_msd_4d_and_nnunet_channel_files_give_the_same_segmentation(tmp_path):
    msd = make_phantom(tmp_path / "msd", "prostate", n_cases=2, seed=0, shape=(24, 24, 6))
    nnunet = make_phantom(tmp_path / "nnunet", "prostate", n_cases=2, seed=0,
                          shape=(24, 24, 6), fmt="nnunet")
    torch.manual_seed(0)
    net = build_model(preset("unet"), 2, 3, base_channels=4)
    weights = save_weights(net.state_dict(), tmp_path / "fold0_seed0.pt")
    export_model(tmp_path / "model", architecture=preset("unet").to_dict(), in_channels=2,
                 n_classes=3, base_channels=4, image_size=16,
                 label_names={0: "background", 1: "PZ", 2: "TZ"}, channel_names=("T2", "ADC"),
                 normalisation={"T2": {"scheme": "zscore"}, "ADC": {"scheme": "zscore"}},
                 weights=[weights])
    a = predict(tmp_path / "model", msd / "imagesTr", tmp_path / "out_msd", device="cpu")
    b = predict(tmp_path / "model", nnunet / "imagesTr", tmp_path / "out_nnunet",
                device="cpu")
    assert not a.failed and not b.failed
    assert [p.name for p in a.written] == [p.name for p in b.written] == \
        ["prostate_00.nii.gz", "prostate_01.nii.gz"]
    for pa, pb in zip(a.written, b.written):
        la, aff = _read(pa)
        lb, _ = _read(pb)
        assert la.shape == nib.load(msd / "imagesTr" / pa.name).shape[:3]
        np.testing.assert_array_equal(la, lb)
        np.testing.assert_allclose(aff, nib.load(msd / "imagesTr" / pa.name).affine)
