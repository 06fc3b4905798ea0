"""The report page: ONE self-contained HTML file that opens offline.

Images are embedded as base64 ``data:`` URIs, the CSS is inline, and there are no
scripts and no external links (only in-page ``#anchors``). Sections: Table 1 (bold
best values and the std note), statistics (Friedman; Wilcoxon with Holm correction),
figures, and the NAS reporting card (:mod:`mbnas.reporting.card`).
"""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from html import escape
from pathlib import Path
from typing import Any

from mbnas.io import atomic_write_text
from mbnas.reporting.card import ReportingCard
from mbnas.reporting.numbers import p_text
from mbnas.reporting.report_data import ReportError
from mbnas.reporting.stats import FriedmanResult, WilcoxonReport, min_p_note
from mbnas.reporting.table import Cell, Table1

__all__ = ["FigureRef", "build_html", "data_uri"]

_MIME = {".png": "image/png", ".svg": "image/svg+xml", ".jpg": "image/jpeg",
         ".jpeg": "image/jpeg"}

_CSS = """
body{font-family:-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;color:#1f2328;
 max-width:1150px;margin:0 auto;padding:24px 32px;line-height:1.45;background:#fff}
h1{font-size:1.7em;margin-bottom:.2em}h2{border-bottom:1px solid #d0d7de;padding-bottom:.2em;
 margin-top:1.8em}h3{font-size:1.05em;margin:1.2em 0 .4em}
.meta{color:#57606a;font-size:.9em}nav a{margin-right:1em;color:#0969da;text-decoration:none}
table{border-collapse:collapse;margin:.6em 0;font-size:.92em}
th,td{border:1px solid #d0d7de;padding:4px 10px;text-align:right;vertical-align:top}
th{background:#f6f8fa}td:first-child,th:first-child{text-align:left}
tbody tr:nth-child(even){background:#fafbfc}td strong{color:#000}
.note{color:#57606a;font-size:.88em;max-width:60em}.na{color:#8c959f;font-style:italic}
.ok{color:#1a7f37}.warn{color:#9a6700}
.figs{display:flex;flex-wrap:wrap;gap:1.2em;align-items:flex-start}
figure{margin:.6em 0;max-width:100%}td.l{text-align:left}
figure img{max-width:100%;border:1px solid #eaeef2}
figcaption{color:#57606a;font-size:.9em;margin-top:.3em}
table.card{width:100%}table.card td{text-align:left}table.card th{text-align:left;width:16em}
table.card th.section{background:#eaeef2;font-size:1.02em}
ul.kv{margin:0;padding-left:1.1em}ul.kv li{margin:0}
"""


@dataclass(frozen=True)
class FigureRef:
    """A figure for the page: an image file (PNG preferred) and its caption."""

    path: str | Path
    caption: str = ""


def data_uri(path: str | Path) -> str:
    """The file as a base64 ``data:`` URI (PNG, SVG or JPEG)."""
    path = Path(path)
    mime = _MIME.get(path.suffix.lower())
    if mime is None:
        raise ReportError(f"cannot embed {path}: use a .png, .svg or .jpg image")
    if not path.is_file():
        raise ReportError(f"figure {path} does not exist")
    return f"data:{mime};base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _fmt(v: Any) -> str:
    """Escaped HTML for one card value; mappings and lists become nested lists."""
    if v is None:
        return '<span class="na">not available</span>'
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return '<span class="na">n/a</span>' if math.isnan(v) else f"{v:.4g}"
    if isinstance(v, Mapping):
        if not v:
            return '<span class="na">none</span>'
        items = "".join(f"<li><b>{escape(str(k))}</b>: {_fmt(x)}</li>" for k, x in v.items())
        return f'<ul class="kv">{items}</ul>'
    if isinstance(v, (list, tuple)):
        if v and all(isinstance(x, (int, float, str)) for x in v):
            return escape(", ".join(str(x) if not isinstance(x, float) else f"{x:.4g}"
                                    for x in v))
        return '<ul class="kv">' + "".join(f"<li>{_fmt(x)}</li>" for x in v) + "</ul>"
    text = escape(str(v))
    return f'<span class="na">{text}</span>' if text in ("not available", "not done") else text


def _cell(c: Cell) -> str:
    text = escape(c.text)
    return f"<td><strong>{text}</strong></td>" if c.best else f"<td>{text}</td>"


def _table_html(table: Table1 | None) -> str:
    if table is None:
        return ('<p class="na">No evaluation yet: run <code>mbnas evaluate</code> on the '
                "search runs, then build the report with <code>--evaluation</code>.</p>")
    head = "".join(f"<th>{escape(c.header)}</th>" for c in table.columns)
    rows = "".join(
        f"<tr><td>{escape(r.model)} <span class='meta'>({escape(r.kind)})</span></td>"
        + "".join(_cell(c) for c in r.cells) + "</tr>" for r in table.rows)
    out = (f"<table><thead><tr><th>Model</th>{head}</tr></thead><tbody>{rows}</tbody></table>"
           f'<p class="note">{escape(table.note)}</p>')
    if table.class_rows:
        head = "".join(f"<th>{escape(c.header)}</th>" for c in table.class_columns)
        rows = "".join(f'<tr><td>{escape(m)}</td><td class="l">{escape(k)}</td>'
                       + "".join(_cell(c) for c in cells) + "</tr>"
                       for m, k, cells in table.class_rows)
        out += ("<h3>Per class</h3><table><thead><tr><th>Model</th><th>Class</th>"
                f"{head}</tr></thead><tbody>{rows}</tbody></table>")
    return out


def _p(p: float | None) -> str:
    if p is None:
        return '<span class="na">n/a</span>'
    return escape(p_text(p))


def _num(x: float | None, fmt: str = ".4g") -> str:
    return '<span class="na">n/a</span>' if x is None else format(x, fmt)


def _stats_html(friedman: FriedmanResult | None, wilcoxon: WilcoxonReport | None) -> str:
    out = "<h3>Friedman test (run-level Dice per seed x fold)</h3>"
    if friedman is None:
        out += '<p class="na">not run</p>'
    elif not friedman.ok:
        out += f'<p class="warn">Not run: {escape(friedman.reason)}</p>'
    else:
        out += (f"<p>&chi;&sup2;({friedman.df}) = {friedman.statistic:.2f}, "
                f"p = {_p(friedman.p_value)}, over {friedman.n_blocks} (seed, fold) blocks "
                f"and {len(friedman.models)} models ({escape(min_p_note(friedman.min_p_value))})."
                "</p>")
    out += "<h3>Wilcoxon signed-rank tests, Holm-corrected</h3>"
    if wilcoxon is None:
        return out + '<p class="na">not run</p>'
    if wilcoxon.best is None or not wilcoxon.comparisons:
        return out + f'<p class="warn">Not run: {escape(wilcoxon.reason or "no data")}</p>'
    rows = ""
    for c in wilcoxon.comparisons:
        note = escape("; ".join(t for t in (c.reason, min_p_note(c.min_p_value)) if t))
        rows += (f"<tr><td>{escape(c.other)}</td><td>{c.n_pairs}</td><td>{_num(c.statistic)}"
                 f"</td><td>{_p(c.p_value)}</td><td>{_p(c.p_holm)}</td>"
                 f"<td>{_num(c.mean_difference, '+.4f')}</td><td>{note}</td></tr>")
    return out + (
        f"<p>Best searched network <b>{escape(wilcoxon.best)}</b> against each other model, "
        "on the Dice of the (seed, fold) runs both have. Mean difference = best - other "
        f"(positive: the best searched network scores higher). {escape(wilcoxon.correction)}."
        "</p><table><thead><tr><th>Compared with</th><th>Pairs</th><th>W</th><th>p</th>"
        "<th>p (Holm)</th><th>Mean difference</th><th>Note</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>")


def _card_html(card: ReportingCard) -> str:
    rows = ""
    for head, items in card.sections():
        rows += f'<tr><th class="section" colspan="2">{escape(head)}</th></tr>'
        rows += "".join(f"<tr><th>{escape(label)}</th><td>{_fmt(v)}</td></tr>"
                        for label, v in items)
    return f'<table class="card"><tbody>{rows}</tbody></table>'


def build_html(
    out_path: str | Path,
    *,
    title: str,
    table: Table1 | None,
    card: ReportingCard,
    friedman: FriedmanResult | None = None,
    wilcoxon: WilcoxonReport | None = None,
    figures: Sequence[FigureRef | tuple[str | Path, str]] = (),
    intro: str = "",
    paper_table: Table1 | None = None,
    sections: Sequence[tuple[str, str, str]] = (),
) -> Path:
    """Write the report page to ``out_path`` (atomically) and return the path.

    Args:
        out_path: The HTML file to write.
        title: Page title and heading.
        table: Table 1 from :func:`mbnas.reporting.table.build_table`; None for a
            search-only report (the section then says that no evaluation exists yet).
        card: The NAS reporting card.
        friedman: Result of :func:`mbnas.reporting.stats.friedman` (None: "not run").
        wilcoxon: Result of :func:`mbnas.reporting.stats.wilcoxon_vs_best`.
        figures: Images to embed, each a :class:`FigureRef` or ``(path, caption)``.
        intro: A paragraph of plain text under the title.
        paper_table: The paper-comparable Table 1 (per 2D slice), shown after Table 1.
        sections: More sections before the card, each (anchor, heading, HTML body).
    """
    refs = [f if isinstance(f, FigureRef) else FigureRef(*f) for f in figures]
    figs = "".join(
        f'<figure><img alt="{escape(f.caption or Path(f.path).stem)}" src="{data_uri(f.path)}">'
        f"<figcaption>{escape(f.caption)}</figcaption></figure>" for f in refs
    )
    figs = f'<div class="figs">{figs}</div>' if figs else '<p class="na">no figures</p>'
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    nav = "".join(f'<a href="#{a}">{t}</a>' for a, t in (
        ("table1", "Table 1"), ("statistics", "Statistics"), ("figures", "Figures"),
        *((a, t) for a, t, _ in sections), ("card", "NAS reporting card")))
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>"
        f'<h1>{escape(title)}</h1><p class="meta">Generated by mbnas, {stamp}</p>'
        + (f"<p>{escape(intro)}</p>" if intro else "")
        + f"<nav>{nav}</nav>"
        f'<h2 id="table1">Table 1: performance and cost (per case in 3D, original grid)</h2>'
        f"{_table_html(table)}"
        + ('<h2 id="table1-paper">Table 1, paper-comparable: per 2D slice, training grid</h2>'
           f"{_table_html(paper_table)}" if paper_table is not None else "")
        + f'<h2 id="statistics">Statistics</h2>{_stats_html(friedman, wilcoxon)}'
        f'<h2 id="figures">Figures</h2>{figs}'
        + "".join(f'<h2 id="{a}">{escape(t)}</h2>{body}' for a, t, body in sections)
        + f'<h2 id="card">NAS reporting card</h2>{_card_html(card)}'
        "</body></html>\n"
    )
    out_path = Path(out_path)
    atomic_write_text(out_path, page)
    return out_path
