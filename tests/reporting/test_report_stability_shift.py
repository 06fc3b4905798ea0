"""The stability and domain-shift sections, from values."""

from __future__ import annotations

import pytest

from mbnas.metrics import METRICS
from mbnas.reporting.domain_shift import card_value, domain_shift, domain_shift_html, held_out_sites
from mbnas.reporting.report_data import CaseScore, ModelEvaluation
from mbnas.reporting.stability import (
    fold_rank_correlation,
    option_frequencies,
    search_stability,
    variable_distances,
)


def _g(*blocks: str, kernel: int = 3) -> dict:
    return {"kind": "genotype", "nodes": [{"channels": "same", "block": b, "kernel": kernel,
                                           "skip": 0} for b in blocks]}


def test_distance_per_variable_type_and_option_counts() -> None:
    a, b = _g("vgg", "dense", "vgg", "vgg"), _g("vgg", "vgg", "vgg", "vgg", kernel=5)
    assert variable_distances(a, b) == {"channels": 0.0, "block": 0.25, "kernel": 1.0,
                                        "skip": 0.0}
    freq = option_frequencies([a, b])
    assert freq["node 2"]["block"] == {"dense": 1, "vgg": 1}
    assert freq["node 1"]["kernel"] == {"3": 1, "5": 1}


def test_rank_correlation_between_folds() -> None:
    same = fold_rank_correlation({"a": [0.1, 0.2], "b": [0.5, 0.6], "c": [0.9, 0.8]})
    assert same["mean"] == pytest.approx(1.0)
    flipped = fold_rank_correlation({"a": [0.1, 0.9], "b": [0.5, 0.5], "c": [0.9, 0.1]})
    assert flipped["mean"] == pytest.approx(-1.0)
    assert fold_rank_correlation({"a": [0.1, 0.2]})["mean"] is None


def test_search_stability_counts_shared_architectures() -> None:
    s = search_stability(["r0", "r1"], [0.8, 0.7], [_g("vgg"), _g("dense")],
                         [{"a", "b", "c"}, {"a", "b", "c", "d"}],
                         {"a": [0.1, 0.2], "b": [0.3, 0.4], "c": [0.5, 0.6], "d": [0, 0]})
    assert s["shared_architectures"] == 3
    assert s["spread"]["best_score_range"] == pytest.approx(0.1)
    assert s["mean_distance"]["block"] == 1.0
    assert s["rank_correlation"]["mean"] == pytest.approx(1.0)


def _model(name: str, dice: dict[str, float], kind: str = "searched") -> ModelEvaluation:
    cases = tuple(CaseScore(name, 0, 0, c, {"dice": d, "hd95": 1.0, "surface_dice": d})
                  for c, d in dice.items())
    return ModelEvaluation(name=name, kind=kind, architecture={}, cases=cases)


def test_domain_shift_per_held_out_site_and_external_set() -> None:
    sites = {"c1": "A", "c2": "A", "c3": "B", "c4": "B"}
    folds = [["c1", "c2"], ["c3", "c4"]]
    assert held_out_sites(sites, folds) == ["A", "B"]
    assert held_out_sites(sites, [["c1", "c3"], ["c2", "c4"]]) is None
    evals = [_model("net", {"c1": 0.9, "c2": 0.7, "c3": 0.5, "c4": 0.3}),
             _model("unet", {"c1": 0.8, "c2": 0.6, "c3": 0.4, "c4": 0.2}, "baseline")]
    external = {"ext": {"models": {
        "net": [{"case": "e1", "dice": 0.5}, {"case": "e2", "dice": 0.3},
                {"case": "e3", "dice": 0.4}],
        "unet": [{"case": "e1", "dice": 0.4}, {"case": "e2", "dice": 0.1},
                 {"case": "e3", "dice": 0.3}]}}}
    d = domain_shift(evals, sites, folds, external)
    assert d["kind"] == "held-out site and external set"
    net = d["models"]["net"]
    assert net["reference"] == pytest.approx(0.6)
    assert net["columns"]["held-out site A"]["dice"] == pytest.approx(0.8)
    assert net["columns"]["external ext"]["drop"] == pytest.approx(0.6 - 0.4)
    test = d["tests"]["external ext"]
    assert test["reference_model"] == "net"
    assert test["comparisons"]["unet"]["n"] == 3 and test["comparisons"]["unet"]["p"] is not None
    assert card_value(d)["kind"] == "held-out site and external set"


def test_domain_shift_without_sites_or_external_says_none() -> None:
    d = domain_shift([_model("net", {"c1": 0.9})], {"c1": None}, [["c1"]], {})
    assert d["kind"] == "none" and card_value(d).startswith("none")


def test_domain_shift_has_every_measured_metric_in_its_own_direction() -> None:
    # every registered metric measured in-domain and on the external set (ASSD included)
    names = METRICS.names()
    sites = {"c1": None, "c2": None}
    inside = tuple(CaseScore("net", 0, 0, c, {n: 0.5 for n in names}) for c in sites)
    evals = [ModelEvaluation(name="net", kind="searched", cases=inside)]
    external = {"ext": {"models": {"net": [{"case": "e1", **{n: 0.7 for n in names}},
                                           {"case": "e2", **{n: 0.9 for n in names}}]}}}
    d = domain_shift(evals, sites, [["c1", "c2"]], external)
    assert d["metrics"] == list(names)
    row = d["models"]["net"]
    cell = row["columns"]["external ext"]
    for n in names:
        assert row["references"][n] == pytest.approx(0.5)
        assert cell["metrics"][n]["value"] == pytest.approx(0.8)
        # a higher value is a loss for a distance and a gain for an overlap
        sign = -1 if METRICS.get(n).higher_is_better else 1
        assert cell["metrics"][n]["drop"] == pytest.approx(sign * 0.3)
    html = domain_shift_html(d)
    for n in names:
        assert f"{METRICS.get(n).axis_label} per model" in html


def test_domain_shift_leaves_out_what_no_one_measured() -> None:
    # an nnU-Net-like row has Dice only: no HD95 or ASSD table for it
    evals = [ModelEvaluation(name="nn", kind="baseline",
                             cases=(CaseScore("nn", 0, 0, "c1", {"dice": 0.7}),))]
    d = domain_shift(evals, {"c1": None}, [["c1"]],
                     {"ext": {"models": {"nn": [{"case": "e1", "dice": 0.6}]}}})
    assert d["metrics"] == ["dice"]
    assert d["models"]["nn"]["columns"]["external ext"]["drop"] == pytest.approx(0.1)


def test_agreement_per_variable_and_side_by_side_groups() -> None:
    from mbnas.reporting.stability import agreement_html, variable_agreement

    three = [_g("vgg", "dense"), _g("vgg", "vgg"), _g("vgg", "vgg", kernel=5)]
    agreement = variable_agreement(three)
    assert agreement["node 1"]["block"] == 1.0
    assert agreement["node 2"]["block"] == pytest.approx(1 / 3)  # 1 pair of 3 agrees
    assert agreement["node 1"]["kernel"] == pytest.approx(1 / 3)
    assert variable_agreement([_g("vgg")])["node 1"]["block"] is None
    groups = {name: search_stability(["r0", "r1", "r2"], [0.5, 0.5, 0.5], g,
                                     [set(), set(), set()], {})
              for name, g in (("dnas", three), ("local", [_g("vgg", "vgg")] * 3))}
    assert groups["local"]["identical"] == 1.0 and groups["dnas"]["identical"] == 0.0
    html = agreement_html(groups)
    assert "<th>dnas</th><th>local</th>" in html
    assert "<tr><td>node 2 block</td><td>0.3333</td><td>1.0000</td></tr>" in html
    assert "node 1 block" not in html  # every group agrees there
