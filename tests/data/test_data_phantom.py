"""Phantoms: determinism, realistic geometry and intensities, sites, both layouts."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest

from mbnas.data.formats import read_dataset
from mbnas.data.phantom import make_phantom
from mbnas.errors import ConfigError

SHAPE = (32, 32, 10)


def arrays(root):
    """Every NIfTI file's array and affine, by relative path."""
    return {str(p.relative_to(root)): (np.asanyarray(nib.load(p).dataobj), nib.load(p).affine)
            for p in sorted(root.glob("*Tr/*.nii.gz"))}


def test_same_seed_gives_identical_arrays(tmp_path, spleen_msd):
    again = make_phantom(tmp_path / "again", "spleen", 4, seed=0, shape=SHAPE)
    a, b = arrays(spleen_msd), arrays(again)
    assert a.keys() == b.keys() and len(a) == 8
    for key in a:
        assert a[key][0].dtype == b[key][0].dtype
        assert a[key][0].tobytes() == b[key][0].tobytes()
        np.testing.assert_array_equal(a[key][1], b[key][1])
    other = arrays(make_phantom(tmp_path / "other", "spleen", 4, seed=1, shape=SHAPE))
    key = "imagesTr/spleen_1.nii.gz"
    assert other[key][0].tobytes() != a[key][0].tobytes()


def test_spleen_geometry_and_intensities(spleen_msd):
    meta = json.loads((spleen_msd / "dataset.json").read_text())
    assert meta["modality"] == {"0": "CT"} and meta["labels"] == {"0": "background", "1": "spleen"}
    n_slices = set()
    for key, (image, affine) in arrays(spleen_msd).items():
        if key.startswith("labelsTr"):
            continue
        label = np.asanyarray(nib.load(spleen_msd / key.replace("images", "labels")).dataobj)
        sizes = np.sqrt((affine[:3, :3] ** 2).sum(0))
        assert 0.6 < sizes[0] < 1.0 and sizes[2] >= 2.5  # anisotropic, like MSD spleen
        # Stored flipped (LPS-like), so reorientation has work to do.
        assert nib.aff2axcodes(affine) != ("R", "A", "S")
        assert image.dtype == np.int16 and image.shape == label.shape
        assert image.min() <= -1000  # air around the body
        tissue = np.median(image[(image > -200) & (image < 200) & (label == 0)])
        spleen = np.median(image[label == 1])
        assert 20 < tissue < 60 and 80 < spleen < 180 and spleen - tissue > 30
        n_slices.add(image.shape[2])
        assert 5 <= image.shape[2] <= 10
    assert len(n_slices) > 1  # slice counts vary between cases


def test_prostate_channels_labels_and_missing_pz(tmp_path):
    root = make_phantom(tmp_path / "p", "prostate", 8, seed=0, shape=(64, 64, 8))
    meta = json.loads((root / "dataset.json").read_text())
    assert meta["modality"] == {"0": "T2", "1": "ADC"}
    assert meta["labels"] == {"0": "background", "1": "PZ", "2": "TZ"}
    with_pz = 0
    for case in read_dataset(root).cases:
        image = np.asanyarray(nib.load(case.images[0]).dataobj)
        label = np.asanyarray(nib.load(case.label).dataobj)
        assert image.shape == (*label.shape, 2) and image.dtype == np.float32
        values = set(np.unique(label).tolist())
        assert values in ({0, 1, 2}, {0, 2})
        with_pz += 1 in values
        t2 = image[..., 0]
        if 1 in values:  # the peripheral zone is brighter than the transition zone on T2
            assert np.median(t2[label == 1]) > 1.3 * np.median(t2[label == 2])
    assert 0 < with_pz < 8  # PZ absent in some cases, as in real data


def test_sites_are_recorded_and_differ(prostate_msd, prostate_nnunet):
    for root in (prostate_msd, prostate_nnunet):
        assert [c.site for c in read_dataset(root).cases] == ["site0", "site1"] * 2
    meta = json.loads((prostate_nnunet / "dataset.json").read_text())
    assert meta["sites"] == {"prostate_00": "site0", "prostate_01": "site1",
                             "prostate_02": "site0", "prostate_03": "site1"}
    medians = {}
    for case in read_dataset(prostate_msd).cases:
        image = np.asanyarray(nib.load(case.images[0]).dataobj)
        label = np.asanyarray(nib.load(case.label).dataobj)
        medians.setdefault(case.site, []).append(np.median(image[..., 0][label == 2]))
    ratio = np.mean(medians["site0"]) / np.mean(medians["site1"])
    assert not 0.8 < ratio < 1.25  # scanners differ in intensity scale


def test_nnunet_layout(prostate_nnunet):
    names = sorted(p.name for p in (prostate_nnunet / "imagesTr").iterdir())
    assert names[:2] == ["prostate_00_0000.nii.gz", "prostate_00_0001.nii.gz"]
    meta = json.loads((prostate_nnunet / "dataset.json").read_text())
    assert meta["channel_names"] == {"0": "T2", "1": "ADC"}
    assert meta["labels"] == {"background": 0, "PZ": 1, "TZ": 2}
    assert meta["file_ending"] == ".nii.gz" and meta["numTraining"] == 4


def test_output_folder_is_protected(tmp_path):
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    with pytest.raises(ConfigError, match="not an mbnas phantom"):
        make_phantom(precious, "spleen", 2, seed=0, shape=SHAPE)
    assert (precious / "notes.txt").read_text() == "keep me"
    # An earlier phantom is replaced, leaving nothing of it behind.
    root = make_phantom(tmp_path / "ph", "spleen", 3, seed=0, shape=SHAPE)
    make_phantom(root, "spleen", 2, seed=0, shape=SHAPE)
    assert len(list((root / "imagesTr").iterdir())) == 2
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


@pytest.mark.parametrize("kwargs, match", [
    ({"task": "liver"}, "unknown phantom task"),
    ({"fmt": "dicom"}, "unknown dataset format"),
    ({"n_cases": 0}, "at least 1 case"),
    ({"sites": 5}, "sites must be between"),
    ({"shape": (8, 8, 4)}, "shape"),
    ({"min_slices": 20}, "min_slices"),
    ({"seed": -1}, "seed"),
])
def test_bad_arguments(tmp_path, kwargs, match):
    args = {"task": "spleen", "n_cases": 3, "seed": 0, "shape": SHAPE, **kwargs}
    with pytest.raises(ConfigError, match=match):
        make_phantom(tmp_path / "x", **args)
