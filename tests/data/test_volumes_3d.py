"""3D data: the nnU-Net plan (spacing, strides, patch), cached volumes and training patches."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from mbnas.commands.common.volumes import plan_protocol, training_volumes
from mbnas.data import make_phantom
from mbnas.data.formats import read_dataset
from mbnas.data.patches import crop, patch_origin, sample_patches
from mbnas.data.planning import check_patch, plan_patch, plan_strides
from mbnas.errors import ConfigError
from mbnas.training.protocol import Protocol
from mbnas.training.volume import VolumeConfig


def with_spacing(folder: Path, spacing: tuple[float, float, float]) -> Path:
    """Rewrite every NIfTI of a dataset with an axis-aligned affine of ``spacing``."""
    for path in [*folder.glob("imagesTr/*.nii.gz"), *folder.glob("labelsTr/*.nii.gz")]:
        img = nib.load(path)
        data = np.asanyarray(img.dataobj)
        nib.save(nib.Nifti1Image(data, np.diag([*spacing, 1.0])), path)
    return folder


@pytest.fixture(scope="module")
def aniso(tmp_path_factory) -> Path:
    """A spleen phantom of 0.8 x 0.8 x 5 mm voxels (the MSD spleen's anisotropy)."""
    folder = make_phantom(tmp_path_factory.mktemp("aniso") / "ph", "spleen", 4, seed=3,
                          shape=(48, 48, 12))
    return with_spacing(folder, (0.8, 0.8, 5.0))


def test_strides_follow_nnunet_rule_on_anisotropic_phantom(aniso: Path) -> None:
    protocol = plan_protocol(Protocol(batch_size=2, base_channels=4, volume=VolumeConfig()),
                             aniso, levels=3)
    vol = protocol.volume
    assert vol.spacing == (0.8, 0.8, 5.0)
    # 5 mm > 2 x 0.8 and > 2 x 1.6: not halved; 5 <= 2 x 3.2: halved with the others.
    assert vol.strides == ((2, 2, 1), (2, 2, 1), (2, 2, 2))
    current = list(vol.spacing)
    for stride in vol.strides:  # the rule itself, level by level
        finest = min(current)
        assert all((k == 1) == (s > 2 * finest) for s, k in zip(current, stride))
        current = [s * k for s, k in zip(current, stride)]
    # the planned patch is divisible by the total stride and no larger than the median shape
    assert [p % f for p, f in zip(vol.patch_size, (8, 8, 2))] == [0, 0, 0]
    assert vol.patch_size[2] <= 12


def test_isotropic_spacing_halves_every_axis() -> None:
    assert plan_strides((1.0, 1.0, 1.0), 2) == ((2, 2, 2), (2, 2, 2))
    assert plan_strides((0.5, 0.5, 3.0), 4) == ((2, 2, 1), (2, 2, 1), (2, 2, 2), (2, 2, 2))


def test_patch_not_divisible_is_refused_with_what_fits() -> None:
    with pytest.raises(ConfigError, match=r"not divisible .* use --patch-size 20,24,4"):
        check_patch((22, 24, 5), ((2, 2, 1), (2, 2, 2)))


def test_patch_over_budget_is_refused_with_what_fits(aniso: Path) -> None:
    big = Protocol(batch_size=2, base_channels=8,
                   volume=VolumeConfig(patch_size=(48, 48, 12), memory_budget_gb=0.01))
    with pytest.raises(ConfigError, match=r"over the memory budget .* fits \(--patch-size"):
        plan_protocol(big, aniso, levels=3)
    with pytest.raises(ConfigError, match="no patch fits the memory budget"):
        plan_patch((48, 48, 12), (0.8, 0.8, 5.0), ((2, 2, 1),), 64, 32, 1e-6)


def test_3d_space_on_2d_images_is_refused(tmp_path: Path) -> None:
    folder = make_phantom(tmp_path / "flat", "spleen", 2, seed=0, shape=(32, 32, 2))
    for path in [*folder.glob("imagesTr/*.nii.gz"), *folder.glob("labelsTr/*.nii.gz")]:
        img = nib.load(path)  # keep one slice: a dataset of 2D images
        nib.save(nib.Nifti1Image(np.asanyarray(img.dataobj)[:, :, :1], img.affine), path)
    with pytest.raises(ConfigError, match="holds 2D images"):
        plan_protocol(Protocol(volume=VolumeConfig()), folder, levels=3)


def test_volumes_are_resampled_normalised_and_memory_mapped(aniso: Path, tmp_path: Path
                                                            ) -> None:
    protocol = plan_protocol(Protocol(batch_size=2, base_channels=4, volume=VolumeConfig(
        spacing=(1.6, 1.6, 5.0))), aniso, levels=2)
    data = training_volumes(aniso, tmp_path / "cache", protocol)
    assert data.case_ids == tuple(c.case_id for c in read_dataset(aniso).cases)
    for case in data.cases:
        image, label = data.image(case.case_id), data.label(case.case_id)
        assert isinstance(image, np.memmap) and isinstance(label, np.memmap)
        # in-plane halved (0.8 -> 1.6 mm), through-plane kept
        assert image.shape[1:] == label.shape == (24, 24, case.original_shape[2])
        assert set(np.unique(label)) <= {0, 1}
        fg = data.foreground(case.case_id)
        assert len(fg) and (label[tuple(fg.T)] > 0).all()
    ct = data.statistics["ct"]["CT"]
    assert ct["clip_low"] < ct["mean"] < ct["clip_high"]
    folder = data.folder
    again = training_volumes(aniso, tmp_path / "cache", protocol)  # the cache is reused
    assert again.folder == folder


def test_small_volume_is_padded_and_foreground_oversampled(aniso: Path, tmp_path: Path
                                                           ) -> None:
    protocol = plan_protocol(Protocol(batch_size=2, base_channels=4, volume=VolumeConfig(
        spacing=(1.6, 1.6, 5.0))), aniso, levels=2)
    data = training_volumes(aniso, tmp_path / "cache", protocol)
    rng = np.random.default_rng(0)
    patch = (32, 32, 16)  # larger than every volume (24 x 24 x <= 12)
    images, labels = sample_patches(data, patch, 6, 0.5, rng)
    assert images.shape == (6, 1, *patch) and labels.shape == (6, *patch)
    assert all(labels[i].any() for i in range(3, 6))  # the forced half holds foreground
    # the padding is zero outside the volume
    origin = patch_origin((24, 24, 10), patch, rng)
    volume = np.ones((24, 24, 10), np.uint8)
    out = crop(volume, origin, patch)
    assert out.sum() == volume.sum() and out.shape == patch


def test_protocol_volume_round_trips_and_keeps_2d_keys() -> None:
    plain = Protocol()
    assert "volume" not in plain.to_dict()
    vol = dataclasses.replace(plain, volume=VolumeConfig(patch_size=(16, 16, 8),
                                                         spacing=(1.0, 1.0, 2.0),
                                                         strides=((2, 2, 1),)))
    assert Protocol.from_dict(vol.to_dict()) == vol
    assert vol.key != plain.key and vol.spatial_dims == 3 and plain.spatial_dims == 2
