"""The Pareto front's plot, table and card line, from a front.json (no training)."""

from __future__ import annotations

import json
from pathlib import Path

from mbnas.commands.common.runfolder import RunFolder
from mbnas.reporting.front import (
    front_html,
    front_markdown,
    genotype_text,
    objectives_text,
    plot_front,
)
from mbnas.spaces.mbnas import preset


def _front() -> dict:
    unet = preset("unet").to_dict()
    members = [{"arch_key": f"k{i}", "genotype": unet, "score": dice,
                "figures": {"params": p, "macs": m, "memory": 2.0 ** 20 * i, "latency": 1.5}}
               for i, (dice, p, m) in enumerate([(0.8, 2e6, 9e7), (0.7, 1e6, 3e7)], 1)]
    return {"objectives": ["dice", "macs"], "limits": {"macs": 1e8}, "image_size": 32,
            "latency_device": "cpu", "members": members,
            "baselines": {"U-Net": {"params": 5e6, "macs": 2e8, "memory": 4e6,
                                    "latency": 3.0}}}


def test_table_lists_every_member_with_its_figures() -> None:
    md = front_markdown(_front(), "MB-NAS seed 0")
    assert md.count("| k") == 2
    assert "| k1 |" in md and "0.8000" in md and "90.0 M @ 32" in md and "1.0 MiB" in md
    assert "1.50 ms | cpu |" in md and "fp32" in md
    html = front_html(_front(), "MB-NAS seed 0")
    assert html.count("<tr>") == 3 and "2.000 M" in html


def test_plot_has_one_panel_per_cost(tmp_path: Path) -> None:
    log = [{"score": 0.5, "costs": {"macs": 5e7}}, {"score": None, "costs": {"macs": 1e7}}]
    paths = plot_front(_front(), log, "MB-NAS seed 0", tmp_path / "front")
    assert {p.suffix for p in paths} == {".png", ".svg"}
    assert all(p.stat().st_size > 0 for p in paths)
    svg = (tmp_path / "front.svg").read_text()
    assert "[objective]" in svg  # the MACs axis is marked as the objective


def test_card_line_and_reading(tmp_path: Path) -> None:
    assert objectives_text({}) == "Dice only; no cost limits"
    text = objectives_text({"objectives": ["dice", "macs"], "max_macs": 5e7,
                            "protocol": {"image_size": 128}, "latency_device": "cpu"})
    assert text.startswith("dice, macs (Pareto local search")
    assert "macs <= 50.0M MAC" in text and "128x128" in text
    assert RunFolder(tmp_path).read_front() is None
    (tmp_path / "front.json").write_text(json.dumps(_front()))
    assert RunFolder(tmp_path).read_front()["members"][0]["arch_key"] == "k1"
    assert genotype_text(preset("unet").to_dict()).startswith("d vgg3 / d vgg3")


def test_every_panel_has_numbered_axes_and_every_evaluated_point(tmp_path: Path,
                                                                 monkeypatch) -> None:
    from matplotlib.figure import Figure

    seen: list = []
    real = Figure.savefig

    def spy(fig, *args, **kwargs):
        fig.canvas.draw()
        seen.append([(ax.get_ylim(), [t.get_text() for t in ax.get_xticklabels()
                                      if t.get_text() and t.get_visible()])
                     for ax in fig.axes])
        return real(fig, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", spy)
    log = [{"score": 0.2, "costs": {"macs": 5e7}}, {"score": 0.75, "costs": {"macs": 1e7}}]
    plot_front(_front(), log, "MB-NAS seed 0", tmp_path / "front")
    panels = seen[0]
    assert len(panels) == 4
    for (low, high), labels in panels:
        assert low < 0.2 and high > 0.8  # the lowest evaluated point is on every panel
        assert labels, "a panel without numbers on its x axis"
    assert len({ylim for ylim, _ in panels}) == 1
