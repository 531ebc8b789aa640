"""The Pareto figure of a sweep: final accuracy against bytes moved, one dot per point.

Drawn from the sweep table alone (``sweep.parquet``, or the frame written to it), so that
it can be redrawn from a sweep directory without running anything.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from orbitfl.analysis.figures import literal, plt, save_figure
from orbitfl.analysis.style import cue, figure_style


def pareto_front(bytes_total: np.ndarray, accuracy: np.ndarray) -> np.ndarray:
    """Indices of points no other point beats on both fewer bytes and higher accuracy."""
    order = np.lexsort((-accuracy, bytes_total))
    front, best = [], -np.inf
    for i in order:
        if accuracy[i] > best:
            front.append(i)
            best = accuracy[i]
    return np.array(front, dtype=int)


def pareto_figure(table: pd.DataFrame, out: Path, parameters: list[str],
                  style: str = "screen") -> Path:
    """Accuracy against bytes for every complete point; the front is labelled with the
    swept values (``parameters``, columns of ``table``), which say more than point names."""
    with figure_style(style) as chosen:
        fig, ax = plt.subplots(figsize=chosen.size(), layout="constrained")
        _draw(ax, table[table["status"] == "complete"], parameters, chosen.tiny)
        return save_figure(fig, out)


def _draw(ax, ok: pd.DataFrame, parameters: list[str], label_size: float) -> None:
    """The complete points (``ok``) in grey, the front in colour with its swept values."""
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
            ax.annotate(literal(label), (total[i], accuracy[i]), fontsize=label_size,
                        xytext=(4, 4), textcoords="offset points")
        ax.legend()
    ax.set_xlabel("bytes moved, up + down (MB)")
    ax.set_ylabel("final accuracy (%)")
    ax.grid(alpha=0.3)
