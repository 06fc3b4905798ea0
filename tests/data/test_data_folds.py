"""Patient-level folds: disjoint, covering, deterministic, saved once and reused."""

from __future__ import annotations

import json

import pytest

from mbnas.data.folds import (
    leave_site_out_splits,
    load_or_create_splits,
    make_splits,
    read_splits,
)
from mbnas.data.slices import CaseInfo
from mbnas.errors import ConfigError

IDS = [f"case_{i}" for i in range(23)]


@pytest.mark.parametrize("n_folds", [2, 5, 23])
def test_folds_are_disjoint_and_cover_every_case_once(n_folds):
    folds = make_splits(IDS, n_folds, seed=3)
    assert len(folds) == n_folds
    val_ids = [c for f in folds for c in f.val]
    assert sorted(val_ids) == sorted(IDS)  # each case in exactly one validation part
    sizes = [len(f.val) for f in folds]
    assert max(sizes) - min(sizes) <= 1
    for fold in folds:
        assert not set(fold.train) & set(fold.val)
        assert set(fold.train) | set(fold.val) == set(IDS)


def test_folds_are_deterministic_and_depend_on_the_seed():
    folds = make_splits(IDS, 5, seed=7)
    assert make_splits(list(reversed(IDS)), 5, seed=7) == folds
    assert make_splits(IDS, 5, seed=8) != folds


def test_bad_arguments():
    with pytest.raises(ConfigError, match="duplicate"):
        make_splits(["a", "b", "a"], 2, 0)
    with pytest.raises(ConfigError, match="at least 5 cases"):
        make_splits(["a", "b"], 5, 0)
    with pytest.raises(ConfigError, match="at least 2 folds"):
        make_splits(IDS, 1, 0)


def test_splits_file_is_written_once_then_reused(tmp_path):
    path = tmp_path / "run" / "splits.json"
    folds = load_or_create_splits(path, IDS, 5, seed=1)
    assert folds == make_splits(IDS, 5, seed=1)
    saved = json.loads(path.read_text())
    assert saved["n_folds"] == 5 and saved["seed"] == 1
    # The file is the source of truth: hand-edited folds are kept, whatever the seed.
    edited = [{"train": list(a.train), "val": list(a.val)} for a in
              [folds[1], folds[0], *folds[2:]]]
    path.write_text(json.dumps({"folds": edited}))
    assert load_or_create_splits(path, IDS, 5, seed=99) == [folds[1], folds[0], *folds[2:]]


def test_nnunet_splits_final_is_accepted(tmp_path):
    path = tmp_path / "splits_final.json"
    folds = make_splits(IDS, 5, seed=0)
    path.write_text(json.dumps([{"train": list(f.train), "val": list(f.val)} for f in folds]))
    assert read_splits(path) == folds
    assert load_or_create_splits(path, IDS, 5) == folds


def test_mismatching_splits_file_is_refused(tmp_path):
    path = tmp_path / "splits.json"
    load_or_create_splits(path, IDS, 5, seed=0)
    with pytest.raises(ConfigError, match="holds 5 folds but 3"):
        load_or_create_splits(path, IDS, 3)
    with pytest.raises(ConfigError, match=r"other cases.*case_99"):
        load_or_create_splits(path, [*IDS, "case_99"], 5)
    with pytest.raises(ConfigError, match=r"other cases.*not in the dataset.*case_0"):
        load_or_create_splits(path, IDS[1:], 5)
    path.write_text("{not json")
    with pytest.raises(ConfigError, match="not a readable splits file"):
        load_or_create_splits(path, IDS, 5)


def test_overlapping_folds_in_file_are_refused(tmp_path):
    path = tmp_path / "splits.json"
    folds = make_splits(IDS, 2, seed=0)
    bad = [{"train": list(folds[0].train), "val": list(folds[0].val)}] * 2
    path.write_text(json.dumps(bad))
    with pytest.raises(ConfigError, match="exactly one validation fold"):
        load_or_create_splits(path, IDS, 2)


def test_leave_site_out_folds():
    cases = [CaseInfo(f"c{i}", (1.0, 1.0, 1.0), site=f"site{i % 3}") for i in range(7)]
    folds = leave_site_out_splits(cases)
    assert [f.held_out_site for f in folds] == ["site0", "site1", "site2"]
    assert folds[1].val == ("c1", "c4")
    for fold in folds:
        assert {cases[int(c[1:])].site for c in fold.val} == {fold.held_out_site}
        assert fold.held_out_site not in {cases[int(c[1:])].site for c in fold.train}
        assert len(fold.train) + len(fold.val) == 7
    with pytest.raises(ConfigError, match="no site"):
        leave_site_out_splits([*cases, CaseInfo("x", (1.0, 1.0, 1.0))])
    with pytest.raises(ConfigError, match="at least 2 sites"):
        leave_site_out_splits([c for c in cases if c.site == "site0"])
