"""target_spacing and foreground_fraction: validated, keyed only when set, and sampled right."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from mbnas.data.preprocess import PreprocessConfig, cache_folder, load_slices
from mbnas.data.spacing import crop_or_pad, spacing_grid, spacing_lines
from mbnas.errors import ConfigError
from mbnas.training.protocol import PROTOCOLS, Protocol, get_protocol
from mbnas.training.sampling import foreground_slices, pass_order

# The presets' keys on main before these fields existed: every stored run keeps its key.
KEYS_BEFORE = {"paper-spleen": "fa18ed19357ca84c", "paper-prostate": "fbe4d32e0b2afa92",
               "quick": "d5c09cda47221423"}
NEW_FIELDS = ("target_spacing", "foreground_fraction")


def test_the_presets_keys_are_unchanged() -> None:
    assert {name: p.key for name, p in PROTOCOLS.items()} == KEYS_BEFORE


@pytest.mark.parametrize("name", NEW_FIELDS)
def test_a_set_field_changes_the_key_and_round_trips(name: str) -> None:
    base = PROTOCOLS["quick"]
    changed = dataclasses.replace(base, **{name: 0.5})
    assert changed.key != base.key
    assert Protocol.from_dict(changed.to_dict()) == changed
    # an int and the same float are one setting, one key
    assert dataclasses.replace(base, **{name: 1}).key == \
        dataclasses.replace(base, **{name: 1.0}).key


@pytest.mark.parametrize(("name", "value"), [("target_spacing", -1.0),
                                             ("target_spacing", 101.0),
                                             ("foreground_fraction", 1.5),
                                             ("foreground_fraction", "0.3")])
def test_bad_values_are_refused_naming_the_field(name: str, value: object) -> None:
    with pytest.raises(ConfigError, match=name):
        get_protocol("quick", **{name: value})


def test_without_foreground_fraction_the_order_is_the_plain_permutation() -> None:
    fg = torch.tensor([3, 7])
    order = pass_order(20, 4, 0.0, fg, torch.Generator().manual_seed(5))
    assert torch.equal(order, torch.randperm(20, generator=torch.Generator().manual_seed(5)))


def test_foreground_fraction_fills_the_last_places_of_every_batch() -> None:
    labels = torch.zeros(30, 4, 4, dtype=torch.int64)
    labels[[2, 11, 25], 1, 1] = 1
    fg = foreground_slices(labels)
    assert fg.tolist() == [2, 11, 25]
    order = pass_order(30, 6, 1 / 3, fg, torch.Generator().manual_seed(0))
    again = pass_order(30, 6, 1 / 3, fg, torch.Generator().manual_seed(0))
    assert torch.equal(order, again) and len(order) == 30
    batches = order.reshape(5, 6)
    assert set(batches[:, 4:].flatten().tolist()) <= {2, 11, 25}  # 2 of 6 per batch
    share = np.isin(order.numpy(), fg.numpy()).mean()
    assert share >= 1 / 3


def test_crop_or_pad_centres_and_round_trips() -> None:
    src = np.arange(2 * 1 * 5 * 7, dtype=np.float32).reshape(2, 1, 5, 7)
    big = np.empty((2, 1, 9, 9), np.float32)
    crop_or_pad(src, big, np.array([-1.0]))
    assert (big[:, :, 2:7, 1:8] == src).all() and (big[:, :, 0] == -1).all()
    back = np.empty_like(src)
    crop_or_pad(big, back, np.array([0.0]))
    assert (back == src).all()
    assert spacing_grid((512, 400), (0.5, 1.0), 2.0) == (128, 200)


def test_target_spacing_resamples_the_phantom_and_keeps_the_default_cache_key(
        phantom_spleen, tmp_path) -> None:
    from mbnas.data.formats import read_dataset

    dataset = read_dataset(phantom_spleen)
    default = cache_folder(dataset, tmp_path, PreprocessConfig(size=32))
    assert cache_folder(dataset, tmp_path, PreprocessConfig(size=32, target_spacing=0)) == \
        default
    assert cache_folder(dataset, tmp_path, PreprocessConfig(size=32, target_spacing=9.0)) != \
        default
    data = load_slices(phantom_spleen, tmp_path, PreprocessConfig(size=32, target_spacing=9.0))
    assert {c.spacing[1:] for c in data.cases} == {(9.0, 9.0)}
    assert data.labels.max() > 0


def test_check_recommends_a_spacing_when_fields_of_view_differ(tmp_path) -> None:
    import nibabel as nib

    paths = []
    for k, (n, mm) in enumerate([(64, 1.0), (64, 0.5)]):
        path = tmp_path / f"c{k}.nii.gz"
        nib.save(nib.Nifti1Image(np.zeros((n, n, 2), np.int16), np.diag([mm, mm, 3.0, 1])),
                 path)
        paths.append(path)
    lines = spacing_lines(paths, image_size=32)
    assert "0.50-1.00 mm" in lines[0] and "--target-spacing 2.00" in lines[1]
    assert spacing_lines(paths[:1], image_size=32)[1:] == []


def test_predictions_of_a_target_spacing_model_go_back_to_the_middle_of_the_scan() -> None:
    from mbnas.inference.segment import to_scan_grid

    prob = torch.zeros(1, 2, 4, 4)
    prob[:, 0] = 1.0
    prob[0, 1, 1:3, 1:3] = 2.0  # tumour in the middle of the network's 4 x 4 window
    labels = to_scan_grid(prob, (8, 8), window=(8, 8))[0]
    assert int(labels.sum()) == 4 and bool((labels[3:5, 3:5] == 1).all())
    assert int(to_scan_grid(prob, (8, 8))[0].sum()) == 16  # fit-to-size: stretched instead


def test_target_spacing_median_becomes_the_datasets_median_in_mm(phantom_spleen) -> None:
    import argparse

    import nibabel as nib

    from mbnas.cli.settings import real_data_flags
    from mbnas.data.formats import read_dataset

    sizes = [nib.affines.voxel_sizes(nib.load(c.images[0]).affine)[:2]
             for c in read_dataset(phantom_spleen).cases]
    args = argparse.Namespace(target_spacing="median", foreground_fraction=0.25)
    flags = real_data_flags(args, phantom_spleen)
    assert flags["target_spacing"] == pytest.approx(float(np.median(sizes)), abs=1e-3)
    assert flags["foreground_fraction"] == 0.25
    with pytest.raises(ConfigError, match="--target-spacing"):
        real_data_flags(argparse.Namespace(target_spacing="wide"), phantom_spleen)
