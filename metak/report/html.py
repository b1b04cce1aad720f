"""HTML building blocks: escaping, tables, sections and the page with its inline stylesheet.

Every piece of text that came from a results file goes through :func:`esc`; figures arrive as
SVG text already escaped by matplotlib's SVG writer. The page has no script and references no
URL: the only links are ``#fragment`` anchors to its own sections.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from metak.report.render import RenderedFigure

__all__ = ["esc", "table", "section", "figure", "note", "page"]


def esc(value: object) -> str:
    """HTML-escape any value as text (quotes too, so it is safe inside attributes)."""
    return html.escape("" if value is None else str(value), quote=True)


def table(
    header: list[str],
    rows: list[list[str]],
    *,
    numeric: set[int] = frozenset(),
    row_classes: list[str] | None = None,
    caption: str = "",
    css_class: str = "",
) -> str:
    """A table of already-escaped cell HTML; columns in ``numeric`` are right-aligned.

    A row of one cell whose class is ``group`` is a heading across all columns (e.g. the
    analysis a block of summary rows belongs to).
    """
    head = "".join(
        f"<th{' class=num' if i in numeric else ''}>{cell}</th>" for i, cell in enumerate(header)
    )
    body = []
    for index, row in enumerate(rows):
        kind = row_classes[index] if row_classes else ""
        cls = f' class="{kind}"' if kind else ""
        if kind == "group" and len(row) == 1:
            body.append(f'<tr{cls}><th colspan="{len(header)}">{row[0]}</th></tr>')
            continue
        cells = "".join(
            f"<td{' class=num' if i in numeric else ''}>{cell}</td>" for i, cell in enumerate(row)
        )
        body.append(f"<tr{cls}>{cells}</tr>")
    cap = f"<caption>{caption}</caption>" if caption else ""
    table_class = f' class="{css_class}"' if css_class else ""
    return (
        f'<div class="table-wrap"><table{table_class}>{cap}<thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def section(section_id: str, title: str, body: str) -> str:
    """A ``<section>`` with its heading; ``body`` is HTML."""
    return f'<section id="{esc(section_id)}">\n<h2>{esc(title)}</h2>\n{body}\n</section>'


def figure(rendered: RenderedFigure, caption_html: str, collect: list | None = None) -> str:
    """A :class:`~metak.report.render.RenderedFigure` with its caption.

    The axes' description goes into the ``data-axes`` attribute, and the figure into ``collect``
    when given.
    """
    if collect is not None:
        collect.append(rendered)
    return (
        f'<figure id="figure-{esc(rendered.key)}" data-axes="{esc(rendered.axes_json())}">'
        f"{rendered.svg}<figcaption>{caption_html}</figcaption></figure>"
    )


def note(text_html: str, kind: str = "note") -> str:
    """A paragraph of class ``kind`` (``note``, ``warn`` or ``ok``); ``text_html`` is HTML."""
    return f'<p class="{kind}">{text_html}</p>'


_CSS = """
:root { --ink:#1d2330; --muted:#5b6472; --rule:#dfe3ea; --accent:#1f3b73; --bg:#f5f6f8; }
* { box-sizing: border-box; }
body { margin:0; background:var(--bg); color:var(--ink);
  font: 15px/1.55 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", "Helvetica Neue",
  Arial, sans-serif; }
header.top { background:var(--accent); color:#fff; padding:18px 0 14px; }
header.top .inner, main, footer { max-width:1120px; margin:0 auto; padding:0 28px; }
header.top h1 { margin:0 0 2px; font-size:24px; font-weight:650; letter-spacing:.2px; }
header.top p { margin:0; opacity:.85; }
nav.toc { max-width:1120px; margin:14px auto 0; padding:0 28px; font-size:14px; }
nav.toc a { color:var(--accent); text-decoration:none; margin-right:18px; white-space:nowrap; }
nav.toc a:hover { text-decoration:underline; }
section { background:#fff; border:1px solid var(--rule); border-radius:8px; margin:18px 0;
  padding:6px 26px 18px; }
h2 { font-size:20px; margin:16px 0 10px; padding-bottom:6px; border-bottom:2px solid var(--rule); }
h3 { font-size:16px; margin:22px 0 6px; color:var(--accent); }
h3 code, td code { font-size:.92em; }
code { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace;
  background:#eef1f6; padding:1px 4px; border-radius:3px; }
figure { margin:10px 0 18px; }
svg.figure { width:100%; height:auto; display:block; }
figcaption { color:var(--muted); font-size:13.5px; margin-top:4px; }
.table-wrap { overflow-x:auto; margin:8px 0 14px; }
table { border-collapse:collapse; font-size:13.5px; min-width:50%; }
caption { text-align:left; color:var(--muted); padding-bottom:4px; }
th, td { padding:5px 10px; border-bottom:1px solid var(--rule); text-align:left;
  vertical-align:top; }
th { background:#f0f3f8; font-weight:600; }
tbody tr:nth-child(even) { background:#fafbfc; }
td.num, th.num { text-align:right; font-variant-numeric:tabular-nums; white-space:nowrap; }
tr.bad td { background:#fdecea; }
dl.facts { display:grid; grid-template-columns: max-content 1fr; gap:3px 16px; margin:6px 0 10px; }
dl.facts dt { color:var(--muted); }
dl.facts dd { margin:0; }
.banner { background:#b3261e; color:#fff; border-radius:8px; padding:14px 20px; margin:18px 0 0; }
.banner strong { font-size:16px; }
.banner ul { margin:6px 0 0; padding-left:20px; }
.banner code { background:rgba(255,255,255,.18); color:#fff; }
p.note { color:var(--muted); font-size:13.5px; }
p.warn { background:#fff4e5; border-left:4px solid #e08a00; padding:6px 10px; font-size:14px; }
p.ok { background:#eaf6ec; border-left:4px solid #2e7d32; padding:6px 10px; font-size:14px; }
ul.claims { list-style:none; padding:0; }
ul.claims li { border:1px solid var(--rule); border-radius:6px; padding:10px 14px; margin:8px 0; }
.verdict { display:inline-block; padding:1px 9px; border-radius:10px; font-weight:600;
  font-size:13px; color:#fff; }
.verdict.supported { background:#2e7d32; } .verdict.contradicted { background:#b3261e; }
.verdict.uncertain { background:#b26a00; } .verdict.not-assessable { background:#6b7280; }
footer { color:var(--muted); font-size:12.5px; padding-bottom:30px; }
section#answers { border-top:4px solid var(--accent); }
article.answer { border-left:4px solid #2e7d32; padding:2px 0 2px 14px; margin:10px 0 14px; }
article.answer.weak { border-left-color:#b26a00; }
article.answer h3 { margin:0 0 2px; color:var(--ink); font-size:16px; }
article.answer p { margin:2px 0; }
article.answer p.facts { color:var(--muted); font-size:13.5px; }
article.answer .where { white-space:nowrap; }
table.summary { width:100%; }
table.summary td:first-child code { word-break:break-all; }
table.summary td:nth-child(2) { color:var(--muted); font-size:12.5px; max-width:13em; }
tr.group th { background:#e6ebf3; text-align:left; font-weight:600; padding-top:9px; }
@media print { body { background:#fff; } section { border:none; padding:0; } }
"""


def page(
    title: str,
    subtitle_html: str,
    toc: list[tuple[str, str]],
    banner_html: str,
    body: str,
    footer_html: str,
) -> str:
    """The whole document. ``toc`` is (section id, title) pairs."""
    links = "".join(f'<a href="#{esc(i)}">{esc(t)}</a>' for i, t in toc)
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{esc(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        f'<header class="top"><div class="inner"><h1>{esc(title)}</h1>'
        f"<p>{subtitle_html}</p></div></header>\n"
        f'<nav class="toc">{links}</nav>\n<main>\n{banner_html}\n{body}\n</main>\n'
        f"<footer>{footer_html}</footer>\n</body>\n</html>\n"
    )
