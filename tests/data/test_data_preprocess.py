"""Preprocessing: shapes, normalisation, labels, orientation, formats and the cache."""

from __future__ import annotations

import json
import os
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from mbnas.data.check import check_dataset, voxel_sizes
from mbnas.data.preprocess import PreprocessConfig, load_slices, preprocess
from mbnas.errors import ConfigError, DatasetError

SMALL = PreprocessConfig(size=24)


def canonical_label(path: Path) -> np.ndarray:
    return np.asanyarray(nib.as_closest_canonical(nib.load(path)).dataobj)


@pytest.fixture(scope="module")
def prostate_slices(prostate_msd, tmp_path_factory):
    return load_slices(prostate_msd, tmp_path_factory.mktemp("cache"), SMALL)


@pytest.fixture(scope="module")
def spleen_cache(spleen_msd, tmp_path_factory):
    return preprocess(spleen_msd, tmp_path_factory.mktemp("cache"), SMALL)


def test_shapes_cases_and_spacing(prostate_msd, prostate_slices):
    data = prostate_slices
    assert data.channel_names == ("T2", "ADC")
    assert data.label_names == {0: "background", 1: "PZ", 2: "TZ"}
    assert data.images.shape[1:] == (2, 24, 24) and data.images.dtype == np.float32
    assert data.labels.shape == (len(data.images), 24, 24) and data.labels.dtype == np.uint8
    assert data.case_ids == ("prostate_00", "prostate_01", "prostate_02", "prostate_03")
    assert [c.site for c in data.cases] == ["site0", "site1", "site0", "site1"]
    for case in data.cases:
        path = prostate_msd / "labelsTr" / f"{case.case_id}.nii.gz"
        canon = nib.as_closest_canonical(nib.load(path))
        sx, sy, sz = voxel_sizes(canon.affine)
        x, y, z = canon.shape
        part = data.case_slices(case.case_id)
        assert part.stop - part.start == z
        assert list(data.slice_index[part]) == list(range(z))
        np.testing.assert_allclose(case.spacing, (sz, sx * x / 24, sy * y / 24), rtol=1e-6)


def test_mr_channels_are_z_scored_per_case(prostate_slices):
    data = prostate_slices
    for case_id in data.case_ids:
        for c in range(2):
            values = data.images[data.case_slices(case_id), c].astype(np.float64)
            assert abs(values.mean()) < 1e-4
            assert abs(values.std() - 1.0) < 1e-4


def test_ct_clipping_and_foreground_statistics(spleen_msd, spleen_cache):
    data = load_slices(spleen_msd, spleen_cache.parent, SMALL)
    stats = json.loads((spleen_cache / "preprocess.json").read_text())["statistics"]["ct"]["CT"]
    # Independent reference: every foreground voxel of every case, read from the files,
    # each case weighted equally (the same number of samples is drawn per case).
    fg, weights = [], []
    for case_id in data.case_ids:
        image = np.asanyarray(nib.load(spleen_msd / "imagesTr" / f"{case_id}.nii.gz").dataobj)
        label = np.asanyarray(nib.load(spleen_msd / "labelsTr" / f"{case_id}.nii.gz").dataobj)
        fg.append(image[label > 0].astype(np.float64))
        weights.append(np.full(len(fg[-1]), 1.0 / len(fg[-1])))
    fg, weights = np.concatenate(fg), np.concatenate(weights)
    mean = np.average(fg, weights=weights)
    std = np.sqrt(np.average((fg - mean) ** 2, weights=weights))
    assert abs(stats["mean"] - mean) < 0.05 * std
    assert abs(stats["std"] - std) < 0.05 * std
    assert stats["clip_low"] < np.percentile(fg, 5) and stats["clip_high"] > np.percentile(fg, 95)
    assert stats["n_samples"] == 4 * SMALL.ct_samples_per_case
    low = (stats["clip_low"] - stats["mean"]) / stats["std"]
    high = (stats["clip_high"] - stats["mean"]) / stats["std"]
    values = data.images[:, 0]
    assert values.min() == pytest.approx(low, abs=1e-5)  # air (-1000 HU) clipped
    assert values.max() <= high + 1e-5
    # Foreground lands near 0 (edges are blurred with darker tissue by resizing), and far
    # above the background, most of which is air clipped to the low bound.
    spleen = values[data.labels == 1]
    assert abs(np.median(spleen)) < 1.0
    assert np.median(values[data.labels == 0]) < np.median(spleen) - 1.0


@pytest.mark.parametrize("size", [48, 16])
def test_nearest_resizing_keeps_label_values(prostate_msd, tmp_path, size):
    data = load_slices(prostate_msd, tmp_path, PreprocessConfig(size=size))
    for case_id in data.case_ids:
        original = set(np.unique(canonical_label(prostate_msd / "labelsTr" /
                                                 f"{case_id}.nii.gz")).tolist())
        resized = set(np.unique(data.labels[data.case_slices(case_id)]).tolist())
        if size > 32:  # upsampling: every voxel survives, so the sets are equal
            assert resized == original
        else:  # downsampling never invents a value (no interpolation between classes)
            assert resized <= original
    fractions = np.bincount(data.labels.ravel(), minlength=3) / data.labels.size
    assert 0 < fractions[1] < 0.2 and 0 < fractions[2] < 0.2


def _reoriented_copy(src: Path, dst: Path, nii, transpose: bool) -> Path:
    """The same dataset with axis 0 flipped (or axes 0 and 1 swapped), affines to match."""
    dst = Path(__import__("shutil").copytree(src, dst))
    for path in [*sorted((dst / "imagesTr").iterdir()), *sorted((dst / "labelsTr").iterdir())]:
        array, affine = nii.read(path)
        if transpose:
            array = np.swapaxes(array, 0, 1)
            change = np.eye(4)[:, [1, 0, 2, 3]]
        else:
            array = array[::-1]
            change = np.diag([-1.0, 1, 1, 1])
            change[0, 3] = array.shape[0] - 1
        nii.write(path, np.ascontiguousarray(array), affine @ change)
    return dst


@pytest.mark.parametrize("transpose", [False, True])
def test_orientation_does_not_change_the_slices(spleen_msd, spleen_cache, tmp_path, nii,
                                                transpose):
    reference = load_slices(spleen_msd, spleen_cache.parent, SMALL)
    moved = _reoriented_copy(spleen_msd, tmp_path / "moved", nii, transpose)
    stored = nii.read(moved / "imagesTr" / "spleen_1.nii.gz")[0]
    original = nii.read(spleen_msd / "imagesTr" / "spleen_1.nii.gz")[0]
    assert not np.array_equal(stored, original)  # the files really differ
    data = load_slices(moved, tmp_path / "cache", SMALL)
    np.testing.assert_array_equal(data.labels, reference.labels)
    np.testing.assert_allclose(data.images, reference.images, atol=1e-5)
    for a, b in zip(data.cases, reference.cases, strict=True):
        np.testing.assert_allclose(a.spacing, b.spacing, rtol=1e-6)


def test_msd_and_nnunet_layouts_give_the_same_slices(prostate_msd, prostate_nnunet,
                                                      prostate_slices, tmp_path):
    other = load_slices(prostate_nnunet, tmp_path, SMALL)
    np.testing.assert_array_equal(other.images, prostate_slices.images)
    np.testing.assert_array_equal(other.labels, prostate_slices.labels)
    assert other.cases == prostate_slices.cases
    assert other.label_names == prostate_slices.label_names
    assert other.channel_names == prostate_slices.channel_names


def test_cache_is_reused_without_reading_the_volumes(spleen_msd, copy_dataset, tmp_path):
    root = copy_dataset(spleen_msd)
    cache = tmp_path / "cache"
    first = preprocess(root, cache, SMALL)
    stamp = (first / "slices.npz").stat().st_mtime_ns
    assert preprocess(root, cache, SMALL) == first
    assert (first / "slices.npz").stat().st_mtime_ns == stamp

    # Damage a volume but keep its size and mtime: a run that read it would fail.
    path = root / "imagesTr" / "spleen_2.nii.gz"
    st, good = path.stat(), path.read_bytes()
    path.write_bytes(b"\0" * st.st_size)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert preprocess(root, cache, SMALL) == first
    assert (first / "slices.npz").stat().st_mtime_ns == stamp

    # Once the mtime changes, the key changes and the damage is found.
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    with pytest.raises(DatasetError, match="spleen_2.nii.gz"):
        preprocess(root, cache, SMALL)
    # Restored, the old entry is found again; other settings are another entry.
    path.write_bytes(good)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert preprocess(root, cache, SMALL) == first
    assert preprocess(root, cache, PreprocessConfig(size=16)) != first
    assert len(list(cache.iterdir())) == 2


def test_broken_dataset_is_refused_with_the_check_messages(spleen_msd, copy_dataset, nii,
                                                           tmp_path):
    root = copy_dataset(spleen_msd)
    image_path = root / "imagesTr" / "spleen_1.nii.gz"
    image, affine = nii.read(image_path)
    image = image.astype(np.float32)
    image[0, 0, 0] = np.inf
    nii.write(image_path, image, affine)
    label_path = root / "labelsTr" / "spleen_3.nii.gz"
    label_path.write_bytes(label_path.read_bytes()[:100])
    problems = [p for p in check_dataset(root) if p.is_error]
    assert len(problems) == 2
    with pytest.raises(DatasetError) as info:
        load_slices(root, tmp_path / "cache", SMALL)
    for problem in problems:
        assert str(problem) in str(info.value)
    assert not any((tmp_path / "cache").glob("*/preprocess.json"))


def test_config_is_validated():
    with pytest.raises(ConfigError, match="size"):
        PreprocessConfig(size=4)
    with pytest.raises(ConfigError, match="percentiles"):
        PreprocessConfig(ct_clip_percentiles=(99.5, 0.5))
