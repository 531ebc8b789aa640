"""Figure styles: the one place that owns matplotlib's rcParams, figure sizes and colours.

A figure is drawn for a medium: ``screen`` (the report's own look), ``paper`` (a journal's
single column, 3.5 in, or double column, 7.16 in, with 7-9 pt text that stays legible at
print size) or ``slides`` (16:9, large text). Figure code never names a size or a font
size of its own: it asks the active style (``current_style()``), which ``figure_style``
sets for a block together with the matching rcParams.

Colours come from the Okabe-Ito palette (safe for the common colour-vision deficiencies)
and always travel with a second cue (marker, line style or hatch), so that series stay
apart in greyscale print too. Every saved figure embeds TrueType fonts (``pdf.fonttype``
42): publishers' checkers reject the Type 3 fonts matplotlib writes by default.
"""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Iterator

import matplotlib.pyplot as plt
from cycler import cycler

from orbitfl.core.errors import InputError

# Okabe & Ito (2008), "Color Universal Design": the eight colours, in the order series use
# them (yellow and black last: yellow is faint on white, black reads as an axis).
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#56B4E9", "#CC79A7", "#F0E442",
           "#000000")
# Second cues. Seven of each: seven and eight are coprime, so (colour, cue) pairs repeat only
# after 56 series.
MARKERS = ("o", "s", "^", "D", "v", "P", "X")
LINESTYLES = ("-", "--", ":", "-.", (0, (6, 1.5, 1, 1.5, 1, 1.5)), (0, (9, 2.5)),
              (0, (1, 1)))
HATCHES = ("", "////", "\\\\\\\\", "xxxx", "....", "oooo", "++++")
# Text embedded as text: TrueType in PDF and PostScript, plain text in SVG (searchable).
FONTS = {"pdf.fonttype": 42, "ps.fonttype": 42, "svg.fonttype": "none"}


@dataclass(frozen=True)
class Cue:
    """How one series is told apart: its colour and a second cue that does not need colour."""

    colour: str
    marker: str
    linestyle: str | tuple
    hatch: str


def cue(index: int) -> Cue:
    """The ``index``-th series' look: colour and second cue both change from one series to
    the next (no two of the first 56 series look alike)."""
    second = index % len(MARKERS)
    return Cue(PALETTE[index % len(PALETTE)], MARKERS[second], LINESTYLES[second],
               HATCHES[second])


def category_cue(index: int) -> Cue:
    """A filled category's look (a station in the Gantt chart): plain colours first, and a
    colour repeats only with a new hatch (and marker) once the eight are used."""
    repeat = (index // len(PALETTE)) % len(HATCHES)
    return Cue(PALETTE[index % len(PALETTE)], MARKERS[repeat], "-", HATCHES[repeat])


@dataclass(frozen=True)
class Style:
    """A medium's figure geometry and type sizes (inches and points)."""

    name: str
    single: float          # width of a one-panel figure
    double: float          # width of a figure of several panels, or a wide one (maps)
    font: float            # axis labels
    small: float           # tick labels, legends
    tiny: float            # annotations, dense labels (Gantt rows, bar values)
    title: float
    aspect: float          # a panel's height / width
    frame: float | None = None  # a fixed figure height / width (slides: 9 / 16)
    line: float = 1.5

    def rc(self) -> dict:
        """The rcParams of this style (with ``FONTS`` and the palette's colour cycle)."""
        return {**FONTS, "font.size": self.font, "axes.labelsize": self.font,
                "axes.titlesize": self.title, "figure.titlesize": self.title,
                "xtick.labelsize": self.small, "ytick.labelsize": self.small,
                "legend.fontsize": self.small, "legend.title_fontsize": self.small,
                "lines.linewidth": self.line, "lines.markersize": 2.6 * self.line,
                "hatch.linewidth": 0.5, "axes.prop_cycle": cycler(color=PALETTE)}

    def width(self, cols: int = 1, wide: bool = False) -> float:
        return self.double if wide or cols > 1 else self.single

    def size(self, cols: int = 1, rows: int = 1, aspect: float | None = None,
             wide: bool = False, min_height: float = 0.0) -> tuple[float, float]:
        """(width, height) of a figure of ``rows`` x ``cols`` panels, each ``aspect`` (height
        / width, default the style's) plus room for a title; at least ``min_height`` (a
        panel with many labelled rows). Slides keep 16:9 unless content needs more."""
        width = self.width(cols, wide)
        height = rows * (width / cols) * (aspect or self.aspect) + self.title / 72 * 2
        if self.frame is not None:
            height = width * self.frame
        return width, round(max(height, min_height), 3)

    def rows_height(self, rows: int, extra: float = 1.2) -> float:
        """Height that gives each of ``rows`` labelled rows room for one line of ``tiny``
        text (Gantt rows, horizontal bars), plus ``extra`` inches of axes and title."""
        return rows * self.tiny * 1.5 / 72 + extra


STYLES = {
    "screen": Style("screen", single=6.4, double=10.0, font=10, small=8, tiny=7, title=11,
                    aspect=0.7),
    # Journal columns (IEEE, ACM, Elsevier: 3.5 and 7.16 in); nothing under 7 pt in print.
    "paper": Style("paper", single=3.5, double=7.16, font=8, small=7, tiny=7, title=9,
                   aspect=0.75, line=1.0),
    # The 16:9 slide itself (13.33 x 7.5 in): text sizes as they will be read.
    "slides": Style("slides", single=13.33, double=13.33, font=14, small=12, tiny=11, title=16,
                    aspect=0.5625, frame=9 / 16, line=2.0),
}
_active: ContextVar[Style] = ContextVar("orbitfl_figure_style", default=STYLES["screen"])


def resolve(style: str | Style) -> Style:
    """A style by name (or the style itself); an unknown name is one line naming the choices."""
    if isinstance(style, Style):
        return style
    if style not in STYLES:
        raise InputError(f"style {style!r}: give one of {', '.join(STYLES)}")
    return STYLES[style]


def current_style() -> Style:
    """The style of the enclosing ``figure_style`` block (``screen`` outside any)."""
    return _active.get()


@contextmanager
def figure_style(style: str | Style = "screen") -> Iterator[Style]:
    """Draw and save figures for a medium: its rcParams for the block, and its sizes for
    the figure code (``current_style()``)."""
    chosen = resolve(style)
    token = _active.set(chosen)
    try:
        with plt.rc_context(chosen.rc()):
            yield chosen
    finally:
        _active.reset(token)
