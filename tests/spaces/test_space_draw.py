"""Architecture pictures (Figure 2c style)."""

from __future__ import annotations

import numpy as np
from matplotlib.patches import FancyArrowPatch

from mbnas.spaces.mbnas import get_space, preset
from mbnas.spaces.mbnas.draw import draw_genotype, figure


def test_draw_writes_png_and_svg(tmp_path):
    png, svg = draw_genotype(preset("unet"), tmp_path / "sub" / "unet")
    assert png == tmp_path / "sub" / "unet.png" and svg == tmp_path / "sub" / "unet.svg"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<svg" in svg.read_text()
    assert not [p for p in (tmp_path / "sub").iterdir() if p.name.endswith(".tmp")]


def test_figure_shows_nodes_blocks_and_skips():
    genotype = get_space("mbnas").sample(np.random.default_rng(3))
    fig = figure(genotype)
    ax = fig.axes[0]
    arcs = [p for p in ax.patches if isinstance(p, FancyArrowPatch)]
    n_skips = sum(len(genotype.skip_sources(i)) for i in range(1, 11))
    assert len(arcs) == n_skips > 0
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert set(legend) == {n.block for n in genotype.nodes} | {"skip"}
    labels = [t.get_text() for t in ax.texts]
    assert "stem" in labels
    assert [str(n.kernel) for n in genotype.nodes] == labels[1:11]
    # Nodes sit at the height of their level (deeper is lower).
    offsets = ax.collections[0].get_offsets()
    assert [-y for y in np.asarray(offsets)[:, 1]] == list(genotype.levels())


def test_every_skip_arc_stays_below_the_title():
    """The outermost arc (the U-Net preset's stem-to-last skip) ran into the title."""
    rng = np.random.default_rng(0)
    space = get_space("mbnas")
    genotypes = [preset("unet"), *(space.sample(rng) for _ in range(5))]
    for genotype in genotypes:
        fig = figure(genotype, title="a title")
        fig.canvas.draw()
        ax = fig.axes[0]
        title = ax.title.get_window_extent()
        for patch in ax.patches:
            assert patch.get_window_extent().y1 <= min(ax.bbox.y1, title.y0) + 1
