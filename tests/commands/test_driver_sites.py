"""Sites end to end on a tiny 3-site phantom: `search --folds site --repeats 2`,
`evaluate --folds site --external OTHER_PHANTOM`, and the report's stability and
domain-shift sections; and the guarantee that external data never touches training.

One module fixture runs the study once (real training, 1 epoch, 4 base channels).
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from mbnas.cli import main
from mbnas.commands.evaluate.run import read_evaluation
from mbnas.data import make_phantom, read_splits
from mbnas.data.formats import read_dataset
from mbnas.inference.model_folder import load_model_folder, normalisation_from_cache
from mbnas.metrics import METRICS
from mbnas.store import ResultStore

# The evaluation keeps the search's protocol (fp32: on CPUs without fast bf16 the "auto"
# precision is several times slower), with the final seeds and folds.
EVALUATE = ["--seeds", "1", "--folds", "site", "--baselines", "none", "--device", "cpu"]


def _run(args: list[str]) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(args)
    return code, out.getvalue()


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    root = tmp_path_factory.mktemp("sites")
    data = make_phantom(root / "phantom", "spleen", n_cases=6, seed=0, shape=(32, 32, 8),
                        sites=3)
    other = make_phantom(root / "other", "spleen", n_cases=3, seed=5, shape=(32, 32, 8),
                         sites=2)
    cache = root / "cache"
    config = root / "search.yaml"
    config.write_text("protocol: {precision: fp32, base_channels: 4}\n")
    # Budget 1 from the U-Net preset: both repeats evaluate the same network, so the
    # second finds all its runs in the shared store.
    code, printed = _run(["search", str(data), "--out", str(root / "search"), "--config",
                          str(config), "--protocol", "quick", "--epochs", "1", "--image-size",
                          "32", "--batch-size", "32", "--budget", "1", "--start", "unet",
                          "--folds", "site", "--repeats", "2", "--cache", str(cache),
                          "--device", "cpu"])
    assert code == 0, printed
    code, printed = _run(["evaluate", str(root / "search"), *EVALUATE, "--cache", str(cache),
                          "--external", f"{other}:other", "--out", str(root / "evaluation")])
    assert code == 0, printed
    code, printed = _run(["report", str(root / "search"), "--evaluation",
                          str(root / "evaluation"), "--out", str(root / "report")])
    assert code == 0, printed
    return SimpleNamespace(root=root, data=data, other=other, cache=cache,
                           search=root / "search", evaluation=root / "evaluation",
                           report=root / "report")


def test_repeats_share_folds_and_store(study: SimpleNamespace) -> None:
    folders = [study.search / "repeat0", study.search / "repeat1"]
    splits = [read_splits(f / "splits.json") for f in folders]
    assert splits[0] == splits[1] == read_splits(study.search / "splits.json")
    assert sorted(f.held_out_site for f in splits[0]) == ["site0", "site1", "site2"]
    logs = [[json.loads(x) for x in (f / "search_log.jsonl").read_text().splitlines()]
            for f in folders]
    assert [e["arch_key"] for e in logs[0]] == [e["arch_key"] for e in logs[1]]
    with ResultStore(study.search / "store.sqlite", read_only=True) as store:
        runs = store.runs()
    # the network both repeats evaluated was trained once per fold, not twice
    assert sorted(r.fold for r in runs) == [0, 1, 2]
    assert {r.arch_key for r in runs} == {logs[0][0]["arch_key"]}
    assert not (study.search / "repeat0" / "store.sqlite").exists()


def test_external_never_touches_training(study: SimpleNamespace) -> None:
    raw, _ = read_evaluation(study.evaluation)
    training_ids = {c.case_id for c in read_dataset(study.data).cases}
    assert {c for f in raw.folds for c in f} == training_ids
    for fold in read_splits(study.evaluation / "splits.json"):
        assert set(fold.train) | set(fold.val) == training_ids
    # the external set was never preprocessed: every cache folder is the training set's
    for meta in study.cache.glob("*/preprocess.json"):
        assert json.loads(meta.read_text())["dataset"]["root"] == str(study.data.resolve())
    # the normalisation applied to it is the training cache's
    model = load_model_folder(study.evaluation / "models" / "mb-nas-repeat0")
    expected = normalisation_from_cache(study.data, study.cache, 32)
    assert list(model.normalisation) == [expected[n] for n in model.channel_names]
    # and the trained runs do not depend on it: without --external nothing is retrained
    code, printed = _run(["evaluate", str(study.search), *EVALUATE, "--cache",
                          str(study.cache), "--out", str(study.evaluation)])
    assert code == 0, printed
    assert "3 runs (0 trained now, 3 from the store)" in printed


def test_external_scores_per_case_on_original_grid(study: SimpleNamespace) -> None:
    ext = json.loads((study.evaluation / "external.json").read_text())["sets"]["other"]
    # the searched networks, and the U-Net preset at their width (the quick protocol
    # narrows networks, so it is evaluated on equal terms)
    assert set(ext["models"]) == {"MB-NAS (repeat0)", "MB-NAS (repeat1)",
                                  "U-Net preset (width 4)"}
    rows = ext["models"]["MB-NAS (repeat0)"]
    assert [r["case"] for r in rows] == [c.case_id for c in read_dataset(study.other).cases]
    assert all(0.0 <= r["dice"] <= 1.0 and r["hd95"] >= 0 for r in rows)
    # every registered metric is measured on the external set, per case and per class
    assert all(set(METRICS.names()) <= set(r) for r in rows)
    assert all(set(v) == set(METRICS.names()) for r in rows for v in r["classes"].values())


def test_external_with_other_channels_is_refused(study: SimpleNamespace,
                                                 tmp_path: Path) -> None:
    prostate = make_phantom(tmp_path / "prostate", "prostate", n_cases=2, seed=0,
                            shape=(32, 32, 4))
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code, _ = _run(["evaluate", str(study.search), *EVALUATE, "--cache",
                        str(study.cache), "--external", str(prostate),
                        "--out", str(tmp_path / "ev")])
    assert code == 2
    message = err.getvalue().strip()
    assert len(message.splitlines()) == 1
    assert "channels T2, ADC instead of CT" in message and "label 1 is 'PZ'" in message
    assert not (tmp_path / "ev" / "store.sqlite").exists()


def test_report_has_stability_and_domain_shift(study: SimpleNamespace) -> None:
    page = (study.report / "report.html").read_text()
    assert '<h2 id="stability">Search stability</h2>' in page
    assert '<h2 id="domain-shift">Domain shift</h2>' in page
    for col in ("held-out site site0", "held-out site site2", "external other"):
        assert col in page
    card = json.loads((study.report / "card.json").read_text())
    assert card["external_validation"]["kind"] == "held-out site and external set"
    assert "2 repeats" in json.dumps(card["search_stability"])
    assert "held-out-site Dice" in json.dumps(card["score_definition"])
    shift = json.loads((study.report / "domain_shift.json").read_text())
    model = shift["models"]["MB-NAS (repeat1)"]
    row = model["columns"]["external other"]
    assert row["cases"] == 3
    assert row["drop"] == pytest.approx(model["reference"] - row["dice"])
    # the domain-shift and external tables show every registered metric (ASSD included)
    assert shift["metrics"] == list(METRICS.names())
    assert set(row["metrics"]) == set(METRICS.names())
    for name in METRICS.names():
        assert f"{METRICS.get(name).axis_label} per model" in page


def test_case_folds_warn_when_a_whole_site_lands_in_one_validation_fold(
        tmp_path: Path) -> None:
    """Issue 35 item 6: ``--folds K`` on a dataset with sites: a fold that validates on
    every case of a site trains without it (a held-out-site fold among case folds)."""
    import warnings

    from mbnas.commands.common.dataset import fold_case_ids, training_data
    from mbnas.data import make_splits

    data_dir = make_phantom(tmp_path / "phantom", "spleen", n_cases=6, seed=0,
                            shape=(32, 32, 8), sites=3)
    data = training_data(data_dir, tmp_path / "cache", 32)
    sites = {c.case_id: c.site for c in data.cases}

    def whole(seed: int) -> set[str]:  # sites whose every case one validation fold holds
        folds = make_splits(list(data.case_ids), 3, seed)
        return {s for s in set(sites.values()) for f in folds
                if {c for c, t in sites.items() if t == s} <= set(f.val)}

    seen = set()
    for seed in range(12):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            fold_case_ids(tmp_path / f"splits{seed}.json", data, 3, seed)
        lines = [str(w.message) for w in caught
                 if "validates on every case of site" in str(w.message)]
        expected = whole(seed)
        assert len(lines) == len(expected), (seed, lines, expected)
        for site, line in zip(sorted(expected), lines, strict=True):
            assert f"site {site!r}" in line and "--group-by site" in line
        seen.add(bool(expected))
    assert seen == {True, False}  # both cases met among the seeds tried
