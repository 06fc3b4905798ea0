"""Sites as data: the case,site CSV, site-aware folds, `mbnas check`'s per-site counts and
phantom sites that differ in geometry and bias."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import nibabel as nib
import pytest

from mbnas.cli import main
from mbnas.data import make_phantom, read_splits
from mbnas.data.anatomy import NEUTRAL_SITE, SiteEffect
from mbnas.data.phantom import site_geometry
from mbnas.data.sites import grouped_splits, load_or_create_site_splits, read_sites_csv
from mbnas.errors import ConfigError

IDS = ["c1", "c2", "c3", "c4"]


def _csv(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sites.csv"
    path.write_text(text)
    return path


def test_sites_csv_is_read_with_or_without_header(tmp_path: Path) -> None:
    rows = "c1,a\nc2,a\nc3,b\nc4,b\n"
    assert read_sites_csv(_csv(tmp_path, rows), IDS) == {"c1": "a", "c2": "a", "c3": "b",
                                                         "c4": "b"}
    assert read_sites_csv(_csv(tmp_path, "case,site\n" + rows), IDS)["c4"] == "b"


@pytest.mark.parametrize(("text", "message"), [
    ("c1,a\nc2,a\nc3,b\n", "case c4 of the dataset has no site"),
    ("c1,a\nc2,a\nc3,b\nc4,b\nc9,b\n", "case c9 is not a case of the dataset"),
    ("c1,a\nc2,a\nc2,b\nc3,b\nc4,b\n", "case c2 is listed twice"),
    ("c1,a\nc2\nc3,b\nc4,b\n", "row 2 is not 'case,site'"),
])
def test_sites_csv_errors_name_the_case(tmp_path: Path, text: str, message: str) -> None:
    path = _csv(tmp_path, text)
    with pytest.raises(ConfigError, match=message) as info:
        read_sites_csv(path, IDS)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_grouped_folds_keep_sites_whole() -> None:
    sites = {f"c{i}": f"s{i % 4}" for i in range(12)}
    folds = grouped_splits(sites, 2, seed=0)
    assert sorted(c for f in folds for c in f.val) == sorted(sites)
    for f in folds:
        assert len({sites[c] for c in f.val}) == 2
        assert not {sites[c] for c in f.val} & {sites[c] for c in f.train}
    with pytest.raises(ConfigError, match="need at least 5 sites"):
        grouped_splits(sites, 5, seed=0)


def test_leave_site_out_splits_record_the_site_and_are_reused(tmp_path: Path) -> None:
    sites = {"c1": "a", "c2": "b", "c3": "a", "c4": "c"}
    path = tmp_path / "splits.json"
    folds = load_or_create_site_splits(path, sites, "site", 3, seed=0)
    assert [f.held_out_site for f in read_splits(path)] == ["a", "b", "c"]
    assert folds[0].val == ("c1", "c3")
    assert load_or_create_site_splits(path, sites, "site", 3, seed=0) == folds
    with pytest.raises(ConfigError, match="c9"):
        load_or_create_site_splits(path, {**sites, "c9": "c"}, "site", 3, seed=0)
    with pytest.raises(ConfigError, match="case c2 has no site"):
        load_or_create_site_splits(tmp_path / "x.json", {**sites, "c2": None}, "site", 3, 0)


def test_check_counts_cases_per_site(tmp_path: Path) -> None:
    data = make_phantom(tmp_path / "ph", "spleen", n_cases=5, seed=0, shape=(16, 16, 2),
                        sites=2)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["check", str(data)]) == 0
    assert "sites: site0 (3 cases), site1 (2 cases)" in out.getvalue()
    path = _csv(tmp_path, "spleen_1,x\nspleen_2,x\nspleen_3,y\nspleen_4,y\nspleen_5,z\n")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["check", str(data), "--sites", str(path)]) == 0
    assert "sites: x (2 cases), y (2 cases), z (1 case)" in out.getvalue()
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        assert main(["check", str(data), "--sites", str(_csv(tmp_path, "spleen_1,x\n"))]) == 2
    assert "case spleen_2 (and 3 more) of the dataset has no site" in err.getvalue()


def test_site_geometry_changes_resolution_field_of_view_and_thickness() -> None:
    spacing, shape = site_geometry(NEUTRAL_SITE, (0.8, 0.8, 5.0), (32, 32, 8))
    assert spacing == (0.8, 0.8, 5.0) and shape == (32, 32, 8)
    site = SiteEffect(fov=1.2, matrix=1.25, thickness=2.5)
    spacing, shape = site_geometry(site, (0.8, 0.8, 5.0), (32, 32, 8))
    assert shape == (40, 40, 8)
    assert spacing[0] * shape[0] == pytest.approx(0.8 * 32 * 1.2)  # field of view in mm
    assert spacing[2] == 2.5


def test_phantom_sites_differ_in_geometry_and_are_recorded(tmp_path: Path) -> None:
    data = make_phantom(tmp_path / "ph", "prostate", n_cases=6, seed=2, shape=(32, 32, 4),
                        sites=3)
    record = json.loads((data / "dataset.json").read_text())["mbnas_phantom"]
    effects = record["site_effects"]
    assert sorted(effects) == ["site0", "site1", "site2"]
    assert len({(e["fov"], e["matrix"], e["thickness"], e["bias"])
                for e in effects.values()}) == 3
    for i, path in enumerate(sorted((data / "imagesTr").glob("*.nii.gz"))):
        img = nib.load(path)
        e = effects[f"site{i % 3}"]
        assert img.shape[0] == max(16, round(32 * e["matrix"]))
        assert float(img.header.get_zooms()[2]) == pytest.approx(e["thickness"], rel=1e-5)


def test_search_flags_resolve_the_split(tmp_path: Path) -> None:
    from mbnas.cli import build_parser
    from mbnas.cli.search import search_config

    data = make_phantom(tmp_path / "ph", "spleen", n_cases=6, seed=0, shape=(16, 16, 2),
                        sites=3)

    def config(*flags: str):
        return search_config(build_parser().parse_args(
            ["search", str(data), "--out", str(tmp_path / "run"), *flags]))

    by_site = config("--folds", "site")
    assert (by_site.split, by_site.protocol.folds) == ("site", 3)
    grouped = config("--folds", "2", "--group-by", "site")
    assert (grouped.split, grouped.protocol.folds) == ("group-site", 2)
    assert config("--folds", "2").split == "case"
    csv_path = _csv(tmp_path, "".join(f"spleen_{i},{'ab'[i % 2]}\n" for i in range(1, 7)))
    from_file = config("--folds", "site", "--sites", str(csv_path))
    assert from_file.protocol.folds == 2 and from_file.sites_file == str(csv_path.resolve())
    with pytest.raises(ConfigError, match="--group-by site is for --folds K"):
        config("--folds", "site", "--group-by", "site")
