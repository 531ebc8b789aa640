"""Replicates' learning curves on a common grid: each replicate's accuracy against a cost
(bytes, simulated time, energy) interpolated between its evaluations, never beyond them (a
curve stops where its run stopped), and per grid point the mean and 95 % interval of the
replicates that reach it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .stats import column_intervals

GRID_POINTS = 120
MB = 1e6

# x axes of the curves: name -> (label, x of a rounds table)
AXES = {
    "bytes": ("cumulative bytes moved, up + down (MB)",
              lambda r: (r["bytes_up"] + r["bytes_down"]) / MB),
    "time": ("simulated time (h)", lambda r: r["sim_time_s"] / 3600),
    "energy": ("cumulative training + radio energy (kJ)",
               lambda r: (r["energy_j"] if "energy_j" in r else np.nan) / 1e3),
}
# accuracy columns of rounds.parquet -> their names in the report
KINDS = {"accuracy": "overall", "balanced_accuracy": "balanced",
         "few_shot_accuracy": "few-shot", "personalised_own_mix_accuracy": "personalised own-mix",
         "global_own_mix_accuracy": "global own-mix",
         "miou": "mIoU"}   # segmentation only (its accuracy counts pixels)


def curve(rounds: pd.DataFrame, axis: str, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) of one replicate's evaluated rounds, x increasing (empty when the run did not
    measure ``kind`` or has no ``axis``)."""
    if kind not in rounds.columns or not len(rounds):
        return np.empty(0), np.empty(0)
    x = pd.to_numeric(AXES[axis][1](rounds), errors="coerce").to_numpy(dtype=float)
    y = pd.to_numeric(rounds[kind], errors="coerce").to_numpy(dtype=float)
    keep = np.isfinite(x) & np.isfinite(y)
    order = np.argsort(x[keep], kind="stable")
    return x[keep][order], y[keep][order]


def on_grid(x: np.ndarray, y: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """``y`` interpolated linearly at ``grid``; NaN outside [x[0], x[-1]] (no extrapolation)."""
    out = np.full(len(grid), np.nan)
    if len(x) == 0:
        return out
    inside = (grid >= x[0]) & (grid <= x[-1])
    out[inside] = np.interp(grid[inside], x, y)
    return out


def common_grid(curves: list[tuple[np.ndarray, np.ndarray]],
                points: int = GRID_POINTS) -> np.ndarray:
    """Evenly spaced x from the lowest start to the furthest end of ``curves``."""
    drawn = [x for x, _ in curves if len(x)]
    if not drawn:
        return np.empty(0)
    lo, hi = min(x[0] for x in drawn), max(x[-1] for x in drawn)
    return np.array([lo]) if hi <= lo else np.linspace(lo, hi, points)


@dataclass
class Band:
    """A group's curve on ``grid``: ``n`` replicates reach each point (``full``: all of
    them), their mean, and the 95 % interval of the mean (NaN where n < 2); ``values``
    holds each replicate's curve on the grid (NaN where its run had stopped)."""

    grid: np.ndarray
    n: np.ndarray
    mean: np.ndarray
    low: np.ndarray
    high: np.ndarray
    replicates: int
    values: np.ndarray

    @property
    def full(self) -> np.ndarray:
        return self.n == self.replicates

    def beyond(self) -> np.ndarray:
        """Each replicate's curve where not every run reaches (from the last point every
        run reaches, so that the lines join the mean), NaN elsewhere, for the replicates
        that go on: drawn one by one, since a mean over the runs still going would favour
        them."""
        shown = ~self.full
        last_full = np.flatnonzero(self.full)
        if len(last_full):
            shown[last_full[-1]] = True
        beyond = np.where(shown, self.values, np.nan)
        return beyond[np.isfinite(beyond).sum(axis=1) >= 2]  # (a line, not a lone point)


def band(curves: list[tuple[np.ndarray, np.ndarray]], grid: np.ndarray) -> Band:
    """Mean and 95 % interval over the replicates' ``curves`` at each ``grid`` point, from
    the replicates whose run reached that point."""
    values = np.array([on_grid(x, y, grid) for x, y in curves]).reshape(len(curves), len(grid))
    n, mean, low, high = column_intervals(values)
    return Band(grid, n, mean, low, high, sum(1 for x, _ in curves if len(x)), values)
