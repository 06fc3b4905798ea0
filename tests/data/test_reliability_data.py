"""Dataset folders kept safe: the phantom never deletes what it did not write (issue 11)."""

from __future__ import annotations

import stat

import pytest

from mbnas.data.phantom import make_phantom
from mbnas.errors import ConfigError

SHAPE = (16, 16, 4)


def test_phantom_refuses_to_replace_a_folder_holding_other_files(tmp_path) -> None:
    data = make_phantom(tmp_path / "D", "spleen", 2, seed=0, shape=SHAPE)
    (data / "runs" / "r").mkdir(parents=True)
    (data / "runs" / "r" / "store.sqlite").write_bytes(b"results")
    with pytest.raises(ConfigError, match="did not write.*runs"):
        make_phantom(data, "spleen", 2, seed=0, shape=SHAPE)
    assert (data / "runs" / "r" / "store.sqlite").read_bytes() == b"results"
    (data / "labelsTr" / "notes.txt").write_text("mine")
    (data / "runs" / "r" / "store.sqlite").unlink()
    (data / "runs" / "r").rmdir()
    (data / "runs").rmdir()
    with pytest.raises(ConfigError, match="labelsTr/notes.txt"):
        make_phantom(data, "spleen", 2, seed=0, shape=SHAPE)
    (data / "labelsTr" / "notes.txt").unlink()
    make_phantom(data, "spleen", 2, seed=1, shape=SHAPE)  # its own files only: replaced


def test_phantom_folder_is_readable_by_others(tmp_path) -> None:
    data = make_phantom(tmp_path / "D", "spleen", 1, seed=0, shape=SHAPE)
    mode = stat.S_IMODE(data.stat().st_mode)
    assert mode & 0o055 == 0o755 & 0o055 & ~_umask()
    assert mode != 0o700


def _umask() -> int:
    import os

    mask = os.umask(0)
    os.umask(mask)
    return mask


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty_meta"])
def test_broken_cache_entry_is_rebuilt_with_a_warning(tmp_path, damage) -> None:
    from mbnas.data import PreprocessConfig, load_slices, preprocess

    data = make_phantom(tmp_path / "D", "spleen", 2, seed=0, shape=SHAPE)
    config = PreprocessConfig(size=16)
    good = load_slices(data, tmp_path / "cache", config)
    folder = preprocess(data, tmp_path / "cache", config)
    npz, meta = folder / "slices.npz", folder / "slices.json"
    if damage == "truncate":
        npz.write_bytes(npz.read_bytes()[:200])
    elif damage == "garbage":
        npz.write_bytes(b"\x00garbage" * 100)
    else:
        meta.write_text("{}")
    with pytest.warns(RuntimeWarning, match="broken preprocessing cache entry"):
        again = load_slices(data, tmp_path / "cache", config)
    assert again.images.tobytes() == good.images.tobytes()
    assert again.case_ids == good.case_ids


def test_symlinks_outside_the_dataset_are_errors_inside_warnings(tmp_path) -> None:
    import json
    import shutil

    from mbnas.data.formats import scan_dataset

    data = make_phantom(tmp_path / "D", "spleen", 2, seed=0, shape=SHAPE)
    other = make_phantom(tmp_path / "other", "spleen", 1, seed=3, shape=SHAPE)
    (data / "imagesTr" / "root").symlink_to("/")
    meta = json.loads((data / "dataset.json").read_text())
    outside = other / "imagesTr" / "spleen_1.nii.gz"
    meta["training"][0]["image"] = "./imagesTr/root" + str(outside.resolve())
    # Case 2's label: a symlink that stays inside the dataset folder.
    label = data / "labelsTr" / "spleen_2.nii.gz"
    shutil.move(label, data / "real_label.nii.gz")
    label.symlink_to("../real_label.nii.gz")
    (data / "dataset.json").write_text(json.dumps(meta))
    dataset, problems = scan_dataset(data)
    errors = [str(p) for p in problems if p.is_error]
    warnings = [str(p) for p in problems if not p.is_error]
    assert any("outside the dataset folder" in e and "spleen_1" in e for e in errors), errors
    assert any("spleen_2.nii.gz" in w and "symlink" in w for w in warnings), warnings
    assert [c.case_id for c in dataset.cases] == ["spleen_2"]
