"""Architecture pictures in the style of the paper's Figure 2c.

Nodes go left to right (stem first) at the height of their resolution level (full
resolution on top, deeper levels lower), coloured by block family (legend), labelled
with the kernel size; the main path is drawn as straight lines and the skip
connections as arcs above the nodes. Drawn with matplotlib's Agg backend through the
object-oriented API (no pyplot, no global state), written atomically as PNG and SVG.
"""

from __future__ import annotations

import functools
import io
from pathlib import Path
from typing import IO, Any

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import FancyArrowPatch

from mbnas.io import atomic_write
from mbnas.nn.blocks import block_names
from mbnas.spaces.mbnas.genotype import Genotype, level_text

#: Colours of the paper's families; other registered families take tab10 colours.
BLOCK_COLOURS = {
    "vgg": "#4C72B0",
    "residual": "#DD8452",
    "dense": "#55A868",
    "inception": "#C44E52",
}
STEM_COLOUR = "#8C8C8C"
_EXTRA = ["#8172B3", "#937860", "#DA8BC3", "#CCB974", "#64B5CD", "#17BECF"]


def block_colour(name: str) -> str:
    """The colour of a block family (stable for each registered name)."""
    if name in BLOCK_COLOURS:
        return BLOCK_COLOURS[name]
    extras = [b for b in block_names() if b not in BLOCK_COLOURS]
    index = extras.index(name) if name in extras else len(extras)
    return _EXTRA[index % len(_EXTRA)]


def figure(genotype: Genotype, title: str | None = None) -> Figure:
    """Draw a genotype and return the matplotlib figure."""
    levels = genotype.levels()
    n = len(levels)
    depth = max(levels)
    fig = Figure(figsize=(max(6.0, 0.75 * n + 1.5), 2.2 + 0.7 * depth))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    xs = list(range(n))
    ys = [-lv for lv in levels]

    ax.plot(xs, ys, color="black", linewidth=1.5, zorder=1)
    for i in range(1, n):
        for j in genotype.skip_sources(i):
            # Skips join nodes of the same level; arc above the nodes between them.
            rad = -0.35 if (i - j) > 1 else -0.6
            ax.add_patch(FancyArrowPatch(
                (xs[j], ys[j]), (xs[i], ys[i]), connectionstyle=f"arc3,rad={rad}",
                arrowstyle="-|>", mutation_scale=10, color="#555555",
                linewidth=1.0, linestyle="--", shrinkA=9, shrinkB=9, zorder=0,
            ))

    colours = [STEM_COLOUR] + [block_colour(node.block) for node in genotype.nodes]
    ax.scatter(xs, ys, s=420, c=colours, edgecolors="black", linewidths=0.8, zorder=2)
    labels = ["stem"] + [f"{node.kernel}" for node in genotype.nodes]
    for x, y, label in zip(xs, ys, labels, strict=True):
        ax.text(x, y, label, ha="center", va="center", fontsize=6 if label == "stem" else 9,
                color="white", fontweight="bold", zorder=3)
    for x, y in zip(xs[1:], ys[1:], strict=True):
        ax.text(x, y - 0.33, str(x), ha="center", va="top", fontsize=7, color="#444444")

    ax.set_yticks(range(0, -depth - 1, -1))
    ax.set_yticklabels([level_text(lv) for lv in range(depth + 1)], fontsize=8)
    ax.set_xticks([])
    ax.set_xlim(-0.7, n - 0.3)
    ax.set_ylim(-depth - 0.8, 1.3)
    for side in ("top", "right", "bottom"):
        ax.spines[side].set_visible(False)

    in_use = {node.block for node in genotype.nodes}
    used = [b for b in block_names() if b in in_use] + sorted(in_use - set(block_names()))
    handles = [Line2D([], [], marker="o", linestyle="", markersize=9,
                      markerfacecolor=block_colour(b), markeredgecolor="black", label=b)
               for b in used]
    handles.append(Line2D([], [], color="#555555", linestyle="--", label="skip"))
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8,
              frameon=False, title="block (label: kernel)", title_fontsize=8)
    ax.set_title(title or f"genotype {genotype.key}", fontsize=9)
    fig.tight_layout()
    _fit_arcs(fig, ax)
    return fig


def _fit_arcs(fig: Figure, ax: Axes) -> None:
    """Raise the top of the axes until every skip arc is inside it, below the title.

    The arcs are drawn in display space, so their height depends on the axes' scale:
    measured, not computed; a few rounds converge (each raises the limit by the overshoot).
    """
    for _ in range(4):
        fig.canvas.draw()
        tops = [patch.get_window_extent().y1 for patch in ax.patches]
        box = ax.bbox
        if not tops or max(tops) <= box.y1 - 4:
            return
        low, high = ax.get_ylim()
        per_pixel = (high - low) / box.height
        ax.set_ylim(low, high + (max(tops) - box.y1 + 8) * per_pixel * 1.2)


def draw_genotype(genotype: Genotype, prefix: str | Path,
                  title: str | None = None) -> tuple[Path, Path]:
    """Write ``PREFIX.png`` and ``PREFIX.svg`` of a genotype (atomically).

    Returns:
        The paths of the PNG and the SVG.
    """
    fig = figure(genotype, title)
    prefix = Path(prefix)
    paths = []
    formats: tuple[tuple[str, dict[str, Any]], ...] = (("png", {"dpi": 150}), ("svg", {}))
    for ext, kwargs in formats:
        buf = io.BytesIO()
        fig.savefig(buf, format=ext, **kwargs)
        path = prefix.with_name(prefix.name + f".{ext}")
        atomic_write(path, functools.partial(_write_bytes, buf.getvalue()))
        paths.append(path)
    return paths[0], paths[1]


def _write_bytes(data: bytes, file: IO[bytes]) -> None:
    file.write(data)
