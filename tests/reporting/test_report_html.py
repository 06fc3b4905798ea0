"""The self-contained HTML page, its NAS reporting card and the stability helpers."""

from __future__ import annotations

import base64
import json
import math
import re

import pytest

from mbnas.reporting.card import (
    CARD_SECTIONS,
    ReportingCard,
    cost_summary,
    genotype_similarity,
    software_versions,
    stability,
)
from mbnas.reporting.figures import plot_case_boxplot
from mbnas.reporting.html import FigureRef, build_html
from mbnas.reporting.report_data import CaseScore, ModelEvaluation, ReportError
from mbnas.reporting.stats import friedman, wilcoxon_vs_best
from mbnas.reporting.table import build_table

NODE = {"channels": "same", "block": "vgg", "kernel": 3, "skip": 0}


def _genotype(**changes):
    nodes = [dict(NODE) for _ in range(10)]
    for key, value in changes.items():  # e.g. b3="dense": node 3's block
        field = {"a": "channels", "b": "block", "c": "kernel", "d": "skip"}[key[0]]
        nodes[int(key[1:]) - 1][field] = value
    return {"kind": "genotype", "nodes": nodes}


def test_genotype_similarity():
    a = _genotype()
    assert genotype_similarity(a, a) == 1.0
    assert genotype_similarity(a, _genotype(b3="dense")) == pytest.approx(39 / 40)
    assert genotype_similarity(a, _genotype(b3="dense", c10=5, d2=1)) == pytest.approx(37 / 40)
    shorter = {"kind": "genotype", "nodes": a["nodes"][:8]}
    assert genotype_similarity(a, shorter) == pytest.approx(32 / 40)  # missing nodes differ
    assert math.isnan(genotype_similarity(a, {"kind": "baseline", "name": "unet"}))
    assert math.isnan(genotype_similarity(a, "not a genotype"))


def test_genotype_similarity_on_real_genotypes():
    from mbnas.spaces.mbnas.genotype import Genotype
    from mbnas.spaces.mbnas.presets import preset

    unet = preset("unet")
    d = unet.to_dict()
    d["nodes"][0]["block"] = "residual"
    d["nodes"][0]["kernel"] = 5
    other = Genotype.from_dict(d)
    assert genotype_similarity(unet, other) == pytest.approx(38 / 40)
    assert genotype_similarity(unet.to_dict(), unet) == 1.0


def test_stability():
    gens = [_genotype(), _genotype(b3="dense"), _genotype(b3="dense", c4=5)]
    s = stability([0.80, 0.82, 0.78], gens)
    assert s["runs"] == 3
    assert s["best_score_mean"] == pytest.approx(0.80)
    assert s["best_score_std"] == pytest.approx(0.02)  # sample std
    assert s["best_score_range"] == pytest.approx(0.04)
    assert s["genotype_similarity"] == pytest.approx(
        {"run 0 vs run 1": 39 / 40, "run 0 vs run 2": 38 / 40, "run 1 vs run 2": 39 / 40})
    assert s["genotype_similarity_mean"] == pytest.approx(116 / 120)
    assert s["genotype_similarity_min"] == pytest.approx(38 / 40)
    one = stability([0.8], gens[:1])
    assert one["best_score_std"] is None and "several runs" in one["note"]
    with pytest.raises(ReportError, match="one genotype per score"):
        stability([0.8, 0.9], gens[:1])
    named = stability([0.8, 0.7], [gens[0], {"kind": "baseline", "name": "unet"}],
                      labels=["seed 0", "seed 1"])
    assert math.isnan(named["genotype_similarity"]["seed 0 vs seed 1"])
    assert named["genotype_similarity_mean"] is None
    with pytest.raises(ReportError, match="distinct label"):
        stability([0.8, 0.7], gens[:2], labels=["a", "a"])


def test_cost_summary(table_evals):
    s = cost_summary(table_evals)
    assert s["MB-NAS"] == ("3.04 M params; 644 MMAC at 128x128; 40.3 MMAC at 32x32; "
                           "latency 3.5 ms (cpu); peak memory 120 MiB (cpu)")
    assert s["U-Net"] == "18.4 M params; 302 MMAC at 128x128; 18.9 MMAC at 32x32"


def test_card_round_trip_and_defaults():
    card = ReportingCard(dataset="Task09_Spleen", seeds=[0, 1, 2])
    assert ReportingCard.from_dict(json.loads(json.dumps(card.to_dict()))) == card
    assert card.external_validation == "not done" and card.budget == "not available"
    with pytest.raises(ReportError, match="unknown reporting card fields \\['colour'\\]"):
        ReportingCard.from_dict({"colour": "red"})


@pytest.fixture
def page(table_evals, tmp_path):
    """A full report page from fixed inputs; returns (html path, embedded figure paths)."""
    res_cases = tuple(CaseScore("ResU-Net", c.seed, c.fold, c.case_id,
                                {**c.values, "dice": c.dice - 0.05,
                                 "hd95": c.value("hd95") + 1}) for c in table_evals[1].cases)
    evals = [*table_evals, ModelEvaluation("ResU-Net", "baseline",
                                           {"kind": "baseline", "name": "resunet"}, res_cases)]
    box = plot_case_boxplot(evals, "dice", tmp_path / "box")[0]
    card = ReportingCard(
        dataset="Task09_Spleen (MSD)", cases="41", folds="5", split_seed="0",
        splits_file="data/spleen/splits.json", search_space="MB-NAS (10 nodes)",
        search_space_size="1.14e18", strategy="local search", budget="150 evaluations",
        epochs="50", folds_x_seeds="5 x 3", image_size="128x128",
        score_definition="validation Dice averaged over the last 20% of epochs",
        device="NVIDIA H100", search_hours={"MB-NAS seed 0": "12.5 GPU h"},
        evaluation_hours="3.1 GPU h", seeds=[0, 1, 2, 3, 4],
        search_stability=stability([0.95, 0.94], [_genotype(), _genotype(b3="dense")],
                                   labels=["MB-NAS seed 0", "MB-NAS seed 1"]),
        network_cost=cost_summary(evals), software_versions=software_versions(),
        config_hashes={"MB-NAS seed 0": "3f2a9c"},
    )
    out = build_html(tmp_path / "report" / "report.html", title="MB-NAS report: Spleen",
                     table=build_table(evals), card=card, friedman=friedman(evals),
                     wilcoxon=wilcoxon_vs_best(evals),
                     figures=[FigureRef(box, "Dice per case"), (box, "again, as a tuple")])
    return out, [box]


def test_page_has_every_section(page):
    html = page[0].read_text()
    for heading in ("Table 1", "Statistics", "Figures", "NAS reporting card",
                    "Friedman test", "Wilcoxon signed-rank tests, Holm-corrected"):
        assert heading in html
    for section, items in CARD_SECTIONS:
        assert f">{section}<" in html
        for _, label in items:
            assert f"<th>{label}</th>" in html
    assert "<strong>0.7500 ± 0.071</strong>" in html  # bold best value of Table 1
    assert "sample standard deviation (ddof=1)" in html
    assert "Task09_Spleen (MSD)" in html and "12.5 GPU h" in html
    assert "not done" in html  # external validation was left at its default
    assert "MB-NAS seed 0 vs MB-NAS seed 1</b>: 0.975" in html  # genotype similarity, 39/40
    assert "p (Holm)" in html and "&chi;&sup2;(2)" in html


def test_page_is_self_contained(page):
    path, figures = page
    html = path.read_text()
    assert "http://" not in html and "https://" not in html
    assert "<script" not in html.lower() and "<link" not in html.lower()
    refs = re.findall(r"""(?:src|href)\s*=\s*["']([^"']*)""", html)
    assert refs and all(r.startswith(("data:", "#")) for r in refs)
    images = re.findall(r'<img [^>]*src="data:image/png;base64,([^"]+)"', html)
    assert len(images) == 2
    assert base64.b64decode(images[0]) == figures[0].read_bytes()


def test_missing_figure_is_a_clear_error(table_evals, tmp_path):
    with pytest.raises(ReportError, match="nope.png does not exist"):
        build_html(tmp_path / "r.html", title="t", table=build_table(table_evals),
                   card=ReportingCard(), figures=[(tmp_path / "nope.png", "x")])


def test_page_renders_offline_in_headless_chromium(page, browser):
    """Loaded with every network request refused: no console error, every image decodes,
    and each section's text is in the rendered DOM."""
    context = browser.new_context(viewport={"width": 1280, "height": 2400})
    requests: list[str] = []
    context.route("**/*", lambda route: (requests.append(route.request.url),
                                        route.continue_() if route.request.url.startswith(
                                            ("file:", "data:")) else route.abort()))
    tab = context.new_page()
    errors: list[str] = []
    tab.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    tab.on("pageerror", lambda e: errors.append(str(e)))
    tab.goto(page[0].resolve().as_uri(), wait_until="load")
    sizes = tab.evaluate("Array.from(document.images).map(i => [i.complete, i.naturalWidth])")
    text = tab.inner_text("body")
    context.close()
    assert errors == []
    assert [u for u in requests if not u.startswith(("file:", "data:"))] == []
    assert len(sizes) == 2 and all(done and width > 0 for done, width in sizes)
    for heading in ("Table 1: performance and cost", "Statistics", "Figures",
                    "NAS reporting card", "Friedman test"):
        assert heading in text
    for section, items in CARD_SECTIONS:
        assert section in text
        for _, label in items:
            assert label in text
    assert "0.7500 ± 0.071" in text and "Task09_Spleen (MSD)" in text
