"""Matplotlib figures to inline SVG text: deterministic, self-contained, safe to paste in HTML.

Text stays text (``svg.fonttype = "none"``), so figure labels are readable and searchable; the SVG
writer XML-escapes them. Element ids are prefixed per figure so several SVGs on one page cannot
clash, and the ``<?xml``/``<!DOCTYPE`` preamble, metadata and namespace URLs are dropped: the page
must reference no URL at all, and the same inputs must give the same bytes.

Every figure builder returns a :class:`RenderedFigure`: the SVG and, per axes, what it plots
(:class:`AxisInfo`: the quantity, its units and the outcomes whose numbers are on that axis),
taken from the data the builder plotted. The page carries it in the figure's ``data-axes``
attribute, so tests (and readers of the HTML) can check that no axis mixes units.
"""

from __future__ import annotations

import io
import json
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from types import ModuleType
from typing import TYPE_CHECKING

import matplotlib

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["STYLE", "AxisInfo", "RenderedFigure", "figure_to_svg", "pyplot", "styled"]

# One look for every figure; applied with rc_context, never globally.
STYLE = {
    "svg.fonttype": "none",
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans", "Liberation Sans", "Arial", "Helvetica"],
    "font.size": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "axes.edgecolor": "#444444",
    "xtick.color": "#333333",
    "ytick.color": "#333333",
    "legend.frameon": False,
}
# Matplotlib's SVG writer omits these metadata keys when they are None (no date: reproducible).
_NO_METADATA = {"Creator": None, "Date": None, "Format": None, "Type": None}
_PREAMBLE = re.compile(r"^.*?(?=<svg\b)", re.S)
_NAMESPACES = re.compile(r'\s+xmlns(:\w+)?="[^"]*"')
_METADATA = re.compile(r"<metadata>.*?</metadata>\s*", re.S)
# Path coordinates are in points; matplotlib writes up to six decimals. One (1/10 pt, 0.13 px at
# 96 dpi: invisible) makes the long trace and rank lines of MCMC diagnostics about half as long.
_PATH_DATA = re.compile(r'\sd="([^"]*)"')
_LONG_DECIMALS = re.compile(r"(\d\.\d)\d+")


@dataclass(frozen=True)
class AxisInfo:
    """What one axes of a figure shows.

    ``quantity`` names what the data axis holds (e.g. ``"effect"``, ``"mu[pwv_cf]"``,
    ``"rank"``); ``units`` are the distinct units of the numbers plotted on it and ``outcomes``
    the distinct outcomes they belong to — one each on an axis that does not mix units.
    """

    title: str
    quantity: str
    units: tuple[str, ...]
    outcomes: tuple[str, ...] = ()


@dataclass(frozen=True)
class RenderedFigure:
    """A figure as inline SVG text with the description of each of its axes."""

    key: str
    svg: str
    axes: tuple[AxisInfo, ...]

    def axes_json(self) -> str:
        """The axes as JSON text (for the ``data-axes`` attribute of the page's figure)."""
        return json.dumps([asdict(axis) for axis in self.axes], ensure_ascii=False)


def pyplot() -> ModuleType:
    """``matplotlib.pyplot``, on the Agg backend unless the caller already chose one.

    arviz-plots draws through pyplot. A command-line run has not imported pyplot yet, so it gets the
    non-interactive Agg backend; a notebook that already uses pyplot keeps its own backend (the
    report closes every figure it opens and never shows one).
    """
    if "matplotlib.pyplot" not in sys.modules:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


@contextmanager
def styled(salt: str) -> Iterator[None]:
    """Apply the report style; ``salt`` makes the SVG writer's hashed ids stable and unique."""
    with matplotlib.rc_context({**STYLE, "svg.hashsalt": f"metak-{salt}"}):
        yield


def figure_to_svg(fig: Figure, key: str) -> str:
    """Serialise ``fig`` as inline ``<svg>`` text with ids prefixed by ``key``, then close it."""
    buffer = io.StringIO()
    try:
        with styled(key):
            # No bbox_inches="tight": it draws every figure twice (a third of the report's time);
            # each figure lays itself out (explicit margins or tight_layout).
            fig.savefig(buffer, format="svg", metadata=_NO_METADATA)
    finally:
        _close(fig)
    text = _PREAMBLE.sub("", buffer.getvalue(), count=1)
    text = _METADATA.sub("", text)
    text = _NAMESPACES.sub("", text)
    prefix = re.sub(r"[^A-Za-z0-9_-]", "_", key)
    text = _PATH_DATA.sub(_shorten_path, text)
    text = re.sub(r'\bid="([^"]+)"', rf'id="{prefix}-\1"', text)
    text = re.sub(r'href="#([^"]+)"', rf'href="#{prefix}-\1"', text)
    text = re.sub(r"url\(#([^)]+)\)", rf"url(#{prefix}-\1)", text)
    # Shrink with the page, never grow past the drawn size: the viewBox keeps the aspect ratio.
    text = re.sub(
        r'<svg([^>]*?)\swidth="([^"]*)"\sheight="[^"]*"',
        r'<svg\1 class="figure" style="max-width:\2"',
        text,
        count=1,
    )
    return text.strip()


def _shorten_path(match: re.Match) -> str:
    data = _LONG_DECIMALS.sub(r"\1", match.group(1))
    return f' d="{data}"'


def _close(fig) -> None:
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is not None:
        plt.close(fig)
