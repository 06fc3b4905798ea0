"""`mbnas evaluate` and `mbnas report` end to end on a tiny phantom study.

One module fixture runs the whole study once: two real searches of the MB-NAS space
(so the search-stability section has two runs of one space), the evaluation of their
best networks and of the smp U-Net baseline (2 folds x 2 seeds, final metrics, kept
weights), and the report. Everything is real training on CPU-sized data.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import yaml

from mbnas.cli import main
from mbnas.commands.common.runfolder import RunLock
from mbnas.commands.evaluate.run import evaluate_config, read_evaluation, run_evaluation
from mbnas.commands.report.card import site_summary
from mbnas.commands.search.run import SearchConfig, run_search
from mbnas.costs.measure import count_parameters
from mbnas.data import make_phantom, read_splits
from mbnas.inference.model_folder import load_model_folder
from mbnas.metrics import METRICS, metric_definitions
from mbnas.reporting.card import CARD_SECTIONS, NOT_DONE
from mbnas.spaces.mbnas import architecture_from_dict, build_model, get_space
from mbnas.store import ResultStore, load_weights
from mbnas.training.protocol import get_protocol

# base_channels 4 narrows the searched networks: the U-Net preset at that width is added.
MODELS = ("MB-NAS (run_a)", "MB-NAS (run_b)", "smp U-Net", "U-Net preset (width 4)")
EVALUATE = ["--baselines", "smp-unet", "--seeds", "2", "--folds", "2", "--device", "cpu"]


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    root = tmp_path_factory.mktemp("study")
    data = make_phantom(root / "phantom", "spleen", n_cases=6, seed=0, shape=(48, 48, 4),
                        sites=2)
    # fp32: on CPUs without fast bf16 the "auto" precision is several times slower.
    protocol = get_protocol("quick", epochs=1, folds=2, image_size=32, base_channels=4,
                            batch_size=32, precision="fp32")
    for name, budget, seed in (("run_a", 2, 0), ("run_b", 1, 1)):
        run_search(SearchConfig(data_dir=str(data), space="mbnas", strategy="local",
                                budget=budget, seed=seed, start="unet",
                                cache_dir=str(root / "cache"), protocol=protocol),
                   root / name)
    runs = [str(root / "run_a"), str(root / "run_b")]
    evaluation = root / "evaluation"
    printed = io.StringIO()
    # outside a terminal, with a line at every change of each long step
    with contextlib.redirect_stdout(printed), pytest.MonkeyPatch.context() as env:
        env.setenv("MBNAS_PROGRESS_SECONDS", "0")
        assert main(["evaluate", *runs, *EVALUATE, "--out", str(evaluation)]) == 0
    assert "8 runs (8 trained now, 0 from the store)" in printed.getvalue()
    # the counter counts the runs it trains: the U-Net preset's too, none twice
    counters = re.findall(r"run (\d+)/(\d+): ", printed.getvalue())
    assert {int(n) for _, n in counters} == {8} and max(int(k) for k, _ in counters) == 8
    log = (evaluation / "evaluate.log").read_text().splitlines()
    key = json.loads((evaluation / "evaluation.json").read_text())["protocol_key"]
    assert "starting evaluation in" in log[0] and f"protocol {key}" in log[0]
    steps = _step_lines(printed.getvalue())
    # every run's validation cases on the original grid, one line per case, then done
    for name, unit in (("metrics on the original grid", "cases"), ("network costs", "networks")):
        assert re.match(rf"(\d+)/\1 {unit} \(last: .*\), done in", steps[name][-1]), name
        assert len(steps[name]) >= 3  # begin, each item, end
    report = root / "report"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed), pytest.MonkeyPatch.context() as env:
        env.setenv("MBNAS_PROGRESS_SECONDS", "0")
        assert main(["report", "--evaluation", str(evaluation), "--out", str(report)]) == 0
    stages = _step_lines(printed.getvalue())["report"]
    assert stages[0].startswith("0/8 stages") and stages[-1].startswith("8/8 stages")
    assert "(last: report.html), done in" in stages[-1]
    return SimpleNamespace(root=root, data=data, runs=runs, evaluation=evaluation,
                           report=report)


def _step_lines(printed: str) -> dict[str, list[str]]:
    """The plain progress lines ("2026-12-04 10:00:00 name: 3/8 cases ...") per step."""
    steps: dict[str, list[str]] = {}
    for line in printed.splitlines():
        match = re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d ([^:]+): (\d+/\d+ .*)", line)
        if match:
            steps.setdefault(match[1], []).append(match[2])
    return steps


def _store_count(folder: Path) -> int:
    with ResultStore(folder / "store.sqlite", read_only=True) as store:
        return store.count()


def test_evaluation_scores_every_validation_case_of_every_run(study: SimpleNamespace) -> None:
    raw, evals = read_evaluation(study.evaluation)
    assert [e.name for e in evals] == list(MODELS)
    assert [e.kind for e in evals] == ["searched", "searched", "baseline", "baseline"]
    assert [e.width for e in evals] == ["4 base channels"] * 2 + [
        "full width (smp encoder, 64 first-stage channels)", "4 base channels"]
    config = yaml.safe_load((study.evaluation / "config.yaml").read_text())
    assert config["protocol"]["seeds"] == [0, 1] and config["protocol"]["folds"] == 2
    assert config["protocol"]["final_metrics"] and config["protocol"]["keep_weights"]
    # the search's training settings are kept
    assert config["protocol"]["epochs"] == 1 and config["protocol"]["base_channels"] == 4
    folds = read_splits(study.evaluation / "splits.json")
    for e in evals:
        assert {(c.seed, c.fold) for c in e.cases} == {(s, f) for s in (0, 1) for f in (0, 1)}
        for f, fold in enumerate(folds):
            assert {c.case_id for c in e.cases if c.fold == f} == set(fold.val)
        for c in e.cases:
            assert set(c.values) == set(METRICS.names())  # every registered metric measured
            assert 0.0 <= c.dice <= 1.0 and 0.0 <= c.value("surface_dice") <= 1.0
            assert c.value("hd95") >= 0 and c.value("assd") >= 0
            assert set(c.per_class) == {"spleen"}
            assert c.per_class["spleen"] == pytest.approx(c.values)  # one class: its mean
    # the two MB-NAS runs found the same network: trained once, scored identically
    assert evals[0].architecture == evals[1].architecture
    assert [c.dice for c in evals[0].cases] == [c.dice for c in evals[1].cases]
    assert _store_count(study.evaluation) == 8  # 2 architectures x 2 folds x 2 seeds
    # the case scores are measured on the original grid; the paper-comparable ones are
    # the store's per-slice metrics of each run
    unet = architecture_from_dict({"kind": "baseline", "name": "unet"})
    with ResultStore(study.evaluation / "store.sqlite", read_only=True) as store:
        record = store.get(unet.key, raw.protocol_key, 1, 1)
    stored = record.metrics["cases"]
    original = json.loads((study.evaluation / "original_grid.json").read_text())["metrics"]
    paper = {(c.case_id, c.fold, c.seed): c for c in evals[2].paper_cases}
    assert len(paper) == len(evals[2].cases)
    moved = 0
    for c in evals[2].cases:
        if (c.fold, c.seed) == (1, 1):
            grid = original[f"{unet.key}/1/1/{c.case_id}"]
            assert c.dice == pytest.approx(grid["mean_dice"])
            assert c.value("hd95") == pytest.approx(grid["mean_hd95"])
            moved += c.value("hd95") != pytest.approx(stored[c.case_id]["mean_hd95"])
            per_slice = paper[(c.case_id, 1, 1)]
            for name in METRICS.names():
                assert per_slice.value(name) == pytest.approx(stored[c.case_id]["paper"][name])
    assert moved > 0  # 48 px scans scored at 48 px, not at the 32 px training grid


def test_evaluation_measures_cost(study: SimpleNamespace) -> None:
    _, evals = read_evaluation(study.evaluation)
    for e in evals:
        model = build_model(architecture_from_dict(dict(e.architecture)), 1, 2, 4)
        assert e.cost.params == count_parameters(model)
        assert e.cost.macs_input_size == (32, 32)
        assert e.cost.macs == e.cost.macs_32 > 0  # trained at 32 px
        assert e.cost.latency_ms > 0 and e.cost.peak_memory_mb > 0
        assert re.fullmatch(r"cpu, \d+ CPU thread\(s\)", e.cost.device)  # names its threads
    assert evals[2].cost.params > 100 * evals[0].cost.params  # smp U-Net (vgg13) is big


def test_model_folders_hold_loadable_weights(study: SimpleNamespace) -> None:
    raw, evals = read_evaluation(study.evaluation)
    for e in evals:
        folder = load_model_folder(study.evaluation / raw.details[e.name].model_dir)
        assert folder.architecture.to_dict() == dict(e.architecture)
        assert sorted(p.name for p in folder.weights) == [
            "fold0_seed0.pt", "fold0_seed1.pt", "fold1_seed0.pt", "fold1_seed1.pt"]
        assert folder.base_channels == 4 and folder.image_size == 32
        assert folder.label_names == {0: "background", 1: "spleen"}
        assert folder.normalisation[0]["scheme"] == "ct"  # the dataset's CT statistics
        model = build_model(folder.architecture, 1, 2, folder.base_channels)
        model.load_state_dict(load_weights(folder.weights[0]))  # strict: shapes match
    for run in study.runs:
        best = json.loads((Path(run) / "best.json").read_text())
        folder = load_model_folder(Path(run) / "model")  # what `predict --model` reads
        assert folder.architecture.to_dict() == best["genotype"]
        assert len(folder.weights) == 4


def test_evaluate_again_trains_nothing(study: SimpleNamespace) -> None:
    before = _store_count(study.evaluation)
    _, first = read_evaluation(study.evaluation)
    config = evaluate_config(study.runs, seeds=2, folds=2, baselines=("unet",), device="cpu")
    calls: list[tuple] = []
    hooks = SimpleNamespace(runs_queued=lambda *a: calls.append(("queued", *a)),
                            run_done=lambda r: calls.append(("done", r)),
                            run_started=lambda s: None, epoch_done=lambda s, e: None)
    outcome = run_evaluation(config, study.evaluation, hooks=hooks)
    assert outcome.resumed and outcome.n_trained == 0 and outcome.n_runs == 8
    # the hooks hear of every stored run (a progress bar counts them as done), none done now
    assert sum(c[2] for c in calls if c[0] == "queued") == 8
    assert all(c[0] == "queued" and c[1] == 0 for c in calls)
    assert _store_count(study.evaluation) == before
    assert outcome.evaluations == first  # same scores, and costs read back, not re-timed


def test_report_page_has_every_part(study: SimpleNamespace) -> None:
    html = (study.report / "report.html").read_text()
    for head, items in CARD_SECTIONS:
        assert f">{head}<" in html
        for _, label in items:
            assert f">{label}<" in html
    assert "<script" not in html and not re.search(r'src="(?!data:)', html)
    boxplots = [f"boxplot_{n}" for n in METRICS.names()]  # one per registered metric
    assert len(re.findall(r'src="data:image/png;base64,', html)) == 4 + len(boxplots)
    figures = {p.name for p in (study.report / "figures").iterdir()}
    for stem in ("search_progress", "architecture_mb-nas-run_a", "architecture_mb-nas-run_b",
                 *boxplots, "example_segmentations"):
        assert {f"{stem}.png", f"{stem}.svg"} <= figures
    table = (study.report / "table1.md").read_text()
    header = table.splitlines()[0]
    assert all(f" {d.column_header(tolerance_mm=2.0)} |" in header
               for d in metric_definitions())
    for name in MODELS:
        assert f"| {name} |" in table
    assert len((study.report / "table1.csv").read_text().splitlines()) == 5
    paper = (study.report / "table1_paper.md").read_text()
    assert all(f"| {name} |" in paper for name in MODELS) and "per 2D slice" not in table
    assert "Paper-comparable" in paper and "Trained width" in table
    assert "| 4 base channels |" in table
    assert "paper-comparable: per 2D slice" in html
    stats = json.loads((study.report / "statistics.json").read_text())
    assert stats["friedman"]["ok"] and stats["friedman"]["n_blocks"] == 4
    assert {c["other"] for c in stats["wilcoxon"]["comparisons"]} == set(MODELS) - {
        stats["wilcoxon"]["best"]}


def test_report_card_values(study: SimpleNamespace) -> None:
    card = json.loads((study.report / "card.json").read_text())
    size = get_space("mbnas").size()  # the space's own depth cap (3, the paper's)
    assert all(str(size) in v for v in card["search_space_size"].values())
    assert card["budget"]["MB-NAS (run_a) seed 0"] == "2 evaluations (2 done)"
    stability = card["search_stability"]["MB-NAS (2 runs)"]
    assert stability["runs"] == 2 and stability["genotype_similarity_mean"] == 1.0
    # the phantom has two sites, but the folds mix them: said so, with per-site Dice
    # the card's row says which kind of external validation was done: here none
    assert card["external_validation"].startswith("none: neither leave-site-out folds")
    assert "CPU h" in card["evaluation_hours"]["smp U-Net"]
    assert card["config_hashes"]["evaluation"]["protocol key"] == json.loads(
        (study.evaluation / "evaluation.json").read_text())["protocol_key"]
    markdown = (study.report / "card.md").read_text()
    assert all(f"## {head}" in markdown for head, _ in CARD_SECTIONS)


def test_site_summary_recognises_held_out_site_folds() -> None:
    from mbnas.reporting.report_data import CaseScore, ModelEvaluation

    cases = tuple(CaseScore("M", 0, f, c, {"dice": d, "hd95": 1.0, "surface_dice": 0.5})
                  for f, c, d in ((0, "a", 0.8), (0, "b", 0.6), (1, "c", 0.4)))
    evals = [ModelEvaluation("M", "searched", cases=cases)]
    sites = {"a": "s1", "b": "s1", "c": "s2"}
    held = site_summary(sites, [["a", "b"], ["c"]], evals)
    assert held["design"].startswith("held-out-site validation")
    assert held["M"] == {"s1": "Dice 0.7000 (2 case scores)", "s2": "Dice 0.4000 (1 case scores)"}
    mixed = site_summary(sites, [["a", "c"], ["b"]], evals)
    assert mixed["design"].startswith(NOT_DONE)
    assert site_summary({"a": None}, [["a"]], evals).startswith(NOT_DONE)


def test_search_only_report(study: SimpleNamespace) -> None:
    out = study.root / "search_only"
    assert main(["report", study.runs[0], "--out", str(out)]) == 0
    html = (out / "report.html").read_text()
    assert "No evaluation yet" in html and "NAS reporting card" in html
    assert not (out / "table1.md").exists()
    card = json.loads((out / "card.json").read_text())
    assert "no evaluation yet" in card["evaluation_hours"]
    assert "M params" in card["network_cost"]["MB-NAS"]  # costed from the search alone
    assert card["search_stability"].startswith(NOT_DONE)


def test_report_adds_rows_trained_by_nnunet(study: SimpleNamespace) -> None:
    # nnU-Net's results layout and summary.json format (see tests/reporting/test_report_nnunet.py)
    results = study.root / "nnunet_results"
    for config, step in (("2d", 0.05), ("2d_mbnas", 0.06)):
        for fold in range(2):
            folder = results / f"nnUNetTrainer__nnUNetPlans__{config}" / f"fold_{fold}"
            (folder / "validation").mkdir(parents=True)
            (folder / "validation" / "summary.json").write_text(json.dumps({"metric_per_case": [
                {"metrics": {"1": {"Dice": 0.6 + step * i, "n_ref": 9, "n_pred": 9}},
                 "reference_file": f"gt/spleen_{i}.nii.gz"} for i in range(1 + fold, 7, 2)]}))
    out = study.root / "with_nnunet"
    assert main(["report", "--evaluation", str(study.evaluation), "--nnunet",
                 f"{results}:Spleen", "--out", str(out)]) == 0
    table = (out / "table1.md").read_text()
    for name in (*MODELS, "Spleen nnU-Net 2d (trained by nnU-Net)",
                 "Spleen MB-NAS 2d_mbnas (trained by nnU-Net)"):
        assert f"| {name} |" in table
    tests = json.loads((out / "statistics.json").read_text())["nnunet_case_tests"]
    assert [t["n_cases"] for t in tests] == [6, 6, 6] and all(t["ok"] for t in tests)
    assert "trained by nnU-Net" in (out / "report.html").read_text()


def _refused(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err
    return err


def test_refused_input(study: SimpleNamespace, capsys: pytest.CaptureFixture[str]) -> None:
    root = study.root / "refused"
    no_best = root / "no_best"
    no_best.mkdir(parents=True)
    shutil.copy(Path(study.runs[0]) / "config.yaml", no_best / "config.yaml")
    err = _refused(["evaluate", str(no_best), *EVALUATE, "--out", str(root / "ev")], capsys)
    assert str(no_best) in err and "best.json" in err
    other = root / "other_dataset"
    other.mkdir()
    config = yaml.safe_load((Path(study.runs[0]) / "config.yaml").read_text())
    config["data_dir"] = str(root / "another_phantom")
    (other / "config.yaml").write_text(yaml.safe_dump(config))
    shutil.copy(Path(study.runs[0]) / "best.json", other / "best.json")
    err = _refused(["evaluate", study.runs[0], str(other), *EVALUATE,
                    "--out", str(root / "ev")], capsys)
    assert "different datasets" in err and str(root / "another_phantom") in err
    err = _refused(["evaluate", study.runs[0], "--baselines", "vnet", "--out",
                    str(root / "ev")], capsys)
    assert "vnet" in err
    assert not (root / "ev").exists()  # nothing was started
    err = _refused(["report", str(other), "--evaluation", str(study.evaluation),
                    "--out", str(root / "rep")], capsys)
    assert "another_phantom" in err
    _refused(["report", "--evaluation", str(root), "--out", str(root / "rep")], capsys)
    with RunLock(Path(study.runs[1])):  # a search still running there: its best may change
        err = _refused(["evaluate", *study.runs, *EVALUATE, "--out", str(root / "ev2")],
                       capsys)
    assert study.runs[1] in err and "another mbnas process" in err


@pytest.fixture(autouse=True, scope="module")
def _two_threads() -> Iterator[None]:
    """Two torch threads at most: the suite runs on a 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(min(threads, 2))
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("old", [False, True], ids=["macro+bilevel", "old space: bilevel"])
def test_bilevel_space_size_names_both_phases(tmp_path: Path, old: bool) -> None:
    from mbnas.commands.common.search_runs import read_search_run
    from mbnas.commands.report.card import space_size
    from mbnas.spaces.mbnas import kernel_space, preset

    unet = preset("unet")
    log = [{"index": 0, "genotype": unet.to_dict(), "score": 0.5, "phase": "topology"}]
    (tmp_path / "search_log.jsonl").write_text("".join(json.dumps(e) + "\n" for e in log))
    (tmp_path / "best.json").write_text(json.dumps({"genotype": unet.to_dict()}))
    (tmp_path / "config.yaml").write_text(
        "space: bilevel\nstrategy: local\nmax_depth: 4\ndata_dir: x\n" if old else
        "space: macro\nstrategy: bilevel\nmax_depth: 4\ndata_dir: x\n")
    run = read_search_run(tmp_path)
    assert run.name == "Bilevel-NAS" and (run.space, run.strategy) == ("macro", "bilevel")
    text = space_size(run)
    assert f"phase 1 (topology): {get_space('macro', 4).size():,}" in text
    assert f"phase 2 (kernels of the best topology): {kernel_space(unet, 4).size():,}" in text
