"""The Pareto figure of a sweep: final accuracy against bytes moved, one dot per point.

Drawn from the sweep table alone (``sweep.parquet``, or the frame written to it), so that
it can be redrawn from a sweep directory without running anything.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from orbitfl.analysis.figures import literal, plt, save_figure
from orbitfl.analysis.style import cue, current_style, figure_style


def pareto_front(bytes_total: np.ndarray, accuracy: np.ndarray) -> np.ndarray:
    """Indices of points no other point beats on both fewer bytes and higher accuracy."""
    order = np.lexsort((-accuracy, bytes_total))
    front, best = [], -np.inf
    for i in order:
        if accuracy[i] > best:
            front.append(i)
            best = accuracy[i]
    return np.array(front, dtype=int)


def coinciding(x: np.ndarray, y: np.ndarray, digits: int = 9) -> list[np.ndarray]:
    """Groups (two or more indices) of points drawn at the same place: equal ``x`` and ``y``
    to ``digits`` significant digits (two sweep points that gave the same run to the byte
    would otherwise hide each other)."""
    keys = pd.DataFrame({"x": [float(f"{v:.{digits}g}") for v in np.asarray(x, float)],
                         "y": [float(f"{v:.{digits}g}") for v in np.asarray(y, float)]})
    groups = keys.groupby(["x", "y"], sort=False, dropna=False).indices.values()
    return [np.asarray(rows) for rows in groups if len(rows) > 1]


def mark_coinciding(ax, x: np.ndarray, y: np.ndarray) -> list:
    """A ring and the note "k points coincide" at every place where points coincide; the
    annotations drawn (``gid="coincide"``)."""
    notes = []
    for rows in coinciding(x, y):
        i = rows[0]
        ax.scatter([x[i]], [y[i]], s=160, facecolors="none", edgecolors="k", lw=0.8,
                   zorder=4)
        notes.append(ax.annotate(f"{len(rows)} points coincide", (x[i], y[i]), fontsize=7,
                                 xytext=(6, -12), textcoords="offset points", gid="coincide"))
    return notes


def pareto_figure(table: pd.DataFrame, out: Path, parameters: list[str],
                  style: str = "screen") -> Path:
    """Accuracy against bytes for every complete point; the front is labelled with the
    swept values (``parameters``, columns of ``table``), which say more than point names."""
    with figure_style(style):
        return save_figure(pareto_view(table, parameters), out)


def pareto_view(table: pd.DataFrame, parameters: list[str]):
    """The Pareto figure, not yet saved (a report saves it in each of its formats)."""
    fig, ax = plt.subplots(figsize=current_style().size(), layout="constrained")
    draw_pareto(ax, table, parameters)
    return fig


def draw_pareto(ax, table: pd.DataFrame, parameters: list[str]) -> None:
    """The Pareto view on ``ax``; points that coincide are ringed and counted."""
    ok = table[table["status"] == "complete"]
    if len(ok):
        total = (ok["bytes_up"] + ok["bytes_down"]).to_numpy(dtype=float) / 1e6
        accuracy = 100 * ok["final_accuracy"].to_numpy(dtype=float)
        ax.scatter(total, accuracy, c="0.55", marker="o", label="points")
        front = pareto_front(total, accuracy)
        look = cue(3)  # vermillion diamonds: apart from the grey points by shape too
        ax.plot(total[front], accuracy[front], marker=look.marker, ls="-", c=look.colour,
                label="Pareto front")
        for i in front:
            label = ", ".join(str(ok[name].iloc[i]) for name in parameters) or ok["point"].iloc[i]
            ax.annotate(literal(label), (total[i], accuracy[i]), fontsize=current_style().tiny,
                        xytext=(4, 4), textcoords="offset points")
        mark_coinciding(ax, total, accuracy)
        ax.legend()
    ax.set_xlabel("bytes moved, up + down (MB)")
    ax.set_ylabel("final accuracy (%)")
    ax.grid(alpha=0.3)
