"""Labels that do not overlap: a small, deterministic placement for point labels (station
names on a map, where sites such as Svalbard, Tromsø and Kiruna or two Fairbanks antennas
sit a few pixels apart).

Each label tries a fixed list of offsets around its point, nearest first, and keeps the
first whose box meets neither an earlier label nor any point's marker; when none is free it
takes the candidate that overlaps least. The same input gives the same layout, and the
result depends only on pixel geometry, so matplotlib (measured text) and the dashboard
(estimated text) share it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from matplotlib.artist import Artist

# Offsets in pixels (screen y up), nearest ring first; each ring tries the diagonals, then
# the sides, then above and below.
DIRECTIONS = ((1, 1), (-1, 1), (1, -1), (-1, -1), (1, 0), (-1, 0), (0, 1), (0, -1))
RINGS = (4.0, 10.0, 18.0, 30.0, 45.0)
MARKER_PX = 4.0  # half the side of the box kept clear around every point
GAP_PX = 1.5     # clearance between two labels (their background boxes have a margin)


@dataclass(frozen=True)
class Placement:
    dx: float      # offset of the label's anchor from its point, pixels, screen y up
    dy: float
    ha: str        # which side of the label sits at the offset: left, right or center
    va: str        # bottom, top or center

    def box(self, x: float, y: float, width: float, height: float) -> tuple:
        """(x0, y0, x1, y1) of a ``width`` x ``height`` label for a point at (x, y)."""
        left = x + self.dx - {"left": 0.0, "right": width, "center": width / 2}[self.ha]
        bottom = y + self.dy - {"bottom": 0.0, "top": height, "center": height / 2}[self.va]
        return left, bottom, left + width, bottom + height


def candidates(scale: float = 1.0) -> list[Placement]:
    """Every offset tried, in order (``scale``: pixels per point at the output's dpi)."""
    out = []
    for ring in RINGS:
        for sx, sy in DIRECTIONS:
            out.append(Placement(sx * ring * scale, sy * ring * scale,
                                 {1: "left", -1: "right", 0: "center"}[sx],
                                 {1: "bottom", -1: "top", 0: "center"}[sy]))
    return out


def _overlap(a: tuple, b: tuple) -> float:
    """Area shared by two boxes (0 when they only touch)."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    return w * h if w > 0 and h > 0 else 0.0


def _grow(box: tuple, by: float) -> tuple:
    return box[0] - by, box[1] - by, box[2] + by, box[3] + by


def place_labels(points: np.ndarray, sizes: np.ndarray, scale: float = 1.0,
                 bounds: tuple | None = None) -> list[Placement]:
    """A placement per label: ``points`` (n, 2) pixel positions, ``sizes`` (n, 2) label
    widths and heights in pixels, ``bounds`` (x0, y0, x1, y1) a label should stay inside."""
    points = np.asarray(points, dtype=float).reshape(-1, 2)
    sizes = np.asarray(sizes, dtype=float).reshape(-1, 2)
    pad = MARKER_PX * scale
    markers = [(x - pad, y - pad, x + pad, y + pad) for x, y in points]
    placed: list[tuple] = []
    out: list[Placement] = []
    options = candidates(scale)
    for i, ((x, y), (width, height)) in enumerate(zip(points, sizes)):
        best, best_cost = options[0], np.inf
        for option in options:
            tight = option.box(x, y, width, height)
            box = _grow(tight, GAP_PX * scale)
            cost = sum(_overlap(box, other) for other in placed) + \
                sum(_overlap(box, m) for j, m in enumerate(markers) if j != i)
            if bounds is not None:  # the part of the label outside the axes
                cost += width * height - _overlap(tight, bounds)
            if cost < best_cost:
                best, best_cost = option, cost
            if cost == 0:
                break
        placed.append(_grow(best.box(x, y, width, height), GAP_PX * scale))
        out.append(best)
    return out


class LabelPlacer(Artist):
    """Places a set of point annotations (``textcoords='offset points'``) when the axes is
    drawn: by then the layout is final, so the pixel geometry is the one that is saved.
    It draws nothing itself; give it a zorder below the labels so that it runs first."""

    def __init__(self, labels: list) -> None:
        super().__init__()
        self.labels = labels
        self.set_in_layout(False)
        self.set_zorder(min((label.get_zorder() for label in labels), default=3) - 0.01)

    def draw(self, renderer) -> None:
        if not self.labels:
            return
        axes = self.axes
        assert axes is not None  # drawn only once added to an axes
        scale = renderer.points_to_pixels(1.0)
        points = axes.transData.transform([label.xy for label in self.labels])
        for label in self.labels:  # size measured from a neutral anchor
            label.set(ha="left", va="bottom")
            label.xyann = (0.0, 0.0)
        sizes = np.array([(e.width, e.height) for e in
                          (label.get_window_extent(renderer) for label in self.labels)])
        bbox = axes.bbox
        placements = place_labels(points, sizes, scale, (bbox.x0, bbox.y0, bbox.x1, bbox.y1))
        for label, placement in zip(self.labels, placements):
            label.set(ha=placement.ha, va=placement.va)
            label.xyann = (placement.dx / scale, placement.dy / scale)
