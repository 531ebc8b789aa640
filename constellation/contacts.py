"""Contact windows of every (satellite, station) pair, from a coarse grid plus refinement.

Method: propagate all satellites on a coarse grid, evaluate f = sin(elevation) - sin(mask)
for every station, then

* every sign change of f between two grid points is a rise or a set, refined by the
  Illinois (modified regula falsi) method to ``tolerance_s``;
* every grid local maximum of f that comes close enough to the mask is refined by a
  golden-section search; its peak is the pass's maximum elevation, and a peak above the mask
  whose grid samples all lie below it is a short pass the grid stepped over (its rise and
  set are then refined on either side of the peak).

Why no pass is missed: over a pass f is unimodal, so one of the two grid samples around the
peak lies within half a step of it and is a grid local maximum. Near the peak
``|f''| <= (v / d)^2`` (straight-line fly-by at speed v, closest distance d; altitude bounds
d from below), so that sample is below the peak by at most ``0.5 * (v/d)^2 * (step/2)^2``.
Every local maximum within that margin of the mask (doubled for safety) is searched, so every
pass whose peak clears the mask is found, however short.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from .propagation import Propagator
from .stations import GroundStation

EARTH_RADIUS_KM = 6378.137
GOLDEN = (np.sqrt(5.0) - 1.0) / 2.0
_MAX_POINTS_PER_CHUNK = 2_000_000  # satellites x grid points propagated at once

WINDOW_COLUMNS = ["sat_index", "satellite", "norad_id", "station", "start_s", "end_s",
                  "duration_s", "max_elevation_deg", "max_elevation_s"]


@dataclass(frozen=True)
class ContactPlan:
    """All windows (one row each, times in seconds since the scenario epoch)."""

    windows: pd.DataFrame
    horizon_s: float

    def for_satellite(self, sat_index: int) -> pd.DataFrame:
        return self.windows[self.windows["sat_index"] == sat_index]


class _ElevationFunction:
    """f = sin(elevation) - sin(mask) for (satellite, station, time) triples."""

    def __init__(self, propagator: Propagator, stations: Sequence[GroundStation]):
        self.propagator = propagator
        self.site = np.array([s.ecef_km() for s in stations])
        self.up = np.array([s.up_unit() for s in stations])
        self.sin_mask = np.sin(np.radians([s.min_elevation_deg for s in stations]))

    def on_grid(self, positions: np.ndarray, station: int) -> np.ndarray:
        """f for (satellites, times) positions (N, T, 3) from one station."""
        rel = positions - self.site[station]
        dist = np.sqrt(np.einsum("ntk,ntk->nt", rel, rel))
        return rel @ self.up[station] / dist - self.sin_mask[station]

    def at(self, sat: np.ndarray, station: np.ndarray, t_s: np.ndarray) -> np.ndarray:
        rel = self.propagator.ecef_at(sat, t_s) - self.site[station]
        dist = np.linalg.norm(rel, axis=1)
        return np.einsum("mk,mk->m", rel, self.up[station]) / dist - self.sin_mask[station]


def _find_roots(f: Callable[[np.ndarray], np.ndarray], lo: np.ndarray, hi: np.ndarray,
                f_lo: np.ndarray, f_hi: np.ndarray, tolerance_s: float) -> np.ndarray:
    """Vectorised Illinois method on brackets with sign(f_lo) != sign(f_hi)."""
    lo, hi, f_lo, f_hi = (np.array(a, dtype=float) for a in (lo, hi, f_lo, f_hi))
    active = np.flatnonzero(hi - lo > tolerance_s)
    side = np.zeros(len(lo), dtype=np.int8)  # which end was kept last time (Illinois rule)
    for _ in range(100):
        if active.size == 0:
            break
        a, b, fa, fb = lo[active], hi[active], f_lo[active], f_hi[active]
        c = b - fb * (b - a) / (fb - fa)
        width = b - a
        # Fall back to bisection where the secant point is degenerate or hugs an end.
        bad = ~np.isfinite(c) | (c <= a + 0.01 * width) | (c >= b - 0.01 * width)
        c = np.where(bad, 0.5 * (a + b), c)
        fc = f(active, c)
        same_as_lo = np.sign(fc) == np.sign(fa)
        # Root in [c, b]: move lo; if lo moved twice in a row, halve f at hi (Illinois).
        move_lo = active[same_as_lo]
        lo[move_lo], f_lo[move_lo] = c[same_as_lo], fc[same_as_lo]
        halve = move_lo[side[move_lo] == 1]
        f_hi[halve] *= 0.5
        side[move_lo] = 1
        move_hi = active[~same_as_lo]
        hi[move_hi], f_hi[move_hi] = c[~same_as_lo], fc[~same_as_lo]
        halve = move_hi[side[move_hi] == -1]
        f_lo[halve] *= 0.5
        side[move_hi] = -1
        active = active[hi[active] - lo[active] > tolerance_s]
    return 0.5 * (lo + hi)


def _golden_max(f: Callable[[np.ndarray], np.ndarray], lo: np.ndarray, hi: np.ndarray,
                tolerance_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised golden-section search for the maximum of unimodal f on [lo, hi]."""
    a, b = np.array(lo, dtype=float), np.array(hi, dtype=float)
    idx = np.arange(len(a))
    c, d = b - GOLDEN * (b - a), a + GOLDEN * (b - a)
    fc, fd = f(idx, c), f(idx, d)
    iterations = int(np.ceil(np.log(max(np.max(b - a, initial=0.0), tolerance_s) / tolerance_s)
                             / -np.log(GOLDEN)))
    for _ in range(iterations):
        left = fc > fd  # maximum lies in [a, d]
        b = np.where(left, d, b)
        a = np.where(left, a, c)
        new_c, new_d = b - GOLDEN * (b - a), a + GOLDEN * (b - a)
        probe = np.where(left, new_c, new_d)
        fp = f(idx, probe)
        # The surviving interior point becomes the other interior point of the new bracket.
        fc, fd = np.where(left, fp, fd), np.where(left, fc, fp)
        c, d = np.where(left, new_c, d), np.where(left, c, new_d)
    t_peak = 0.5 * (a + b)
    return t_peak, f(idx, t_peak)


def peak_margin(grid_step_s: float, min_altitude_km: float) -> float:
    """How far below the mask a grid local maximum can be while its pass still clears it."""
    speed = 7.905 * np.sqrt(EARTH_RADIUS_KM / (EARTH_RADIUS_KM + min_altitude_km)) + 0.47
    curvature = (speed / max(min_altitude_km, 100.0)) ** 2  # |f''| bound (1/s^2)
    return 2.0 * 0.5 * curvature * (grid_step_s / 2.0) ** 2


def compute_contacts(propagator: Propagator, stations: Sequence[GroundStation],
                     horizon_s: float, grid_step_s: float = 30.0,
                     tolerance_s: float = 1e-3) -> ContactPlan:
    """Every contact window in [0, horizon_s] for all satellites and stations."""
    grid = np.arange(0.0, horizon_s, grid_step_s)
    grid = np.append(grid, horizon_s) if grid[-1] < horizon_s else grid
    elevation = _ElevationFunction(propagator, stations)
    perigee_km = min(_perigee_altitude_km(e.line2) for e in propagator.elements)
    scan = _scan_grid(propagator, elevation, grid, peak_margin(grid_step_s, perigee_km))

    def f_for(pairs: np.ndarray) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
        return lambda rows, t: elevation.at(pairs[rows, 0], pairs[rows, 1], t)

    # Rises and sets bracketed by the grid.
    cross = scan.crossings
    rows = np.arange(len(cross))
    f_cross = f_for(cross[:, :2])
    lo, hi = grid[cross[:, 2]], grid[cross[:, 2] + 1]
    event_t = _find_roots(f_cross, lo, hi, f_cross(rows, lo), f_cross(rows, hi), tolerance_s)
    events = cross[:, [0, 1, 3]]

    # Peaks of every candidate local maximum (the grid sample wins at the horizon's ends).
    cand = scan.peaks
    f_peak_fn = f_for(cand[:, :2])
    lo = grid[np.maximum(cand[:, 2] - 1, 0)]
    hi = grid[np.minimum(cand[:, 2] + 1, len(grid) - 1)]
    peak_t, peak_f = _golden_max(f_peak_fn, lo, hi, tolerance_s)
    grid_wins = scan.peak_grid_f > peak_f
    peak_t = np.where(grid_wins, grid[cand[:, 2]], peak_t)
    peak_f = np.where(grid_wins, scan.peak_grid_f, peak_f)

    # Passes the grid stepped over: peak above the mask, every grid sample below it.
    hidden = np.flatnonzero((peak_f > 0.0) & (scan.peak_grid_f <= 0.0))
    if hidden.size:
        pairs = cand[hidden, :2]
        f_hidden = f_for(pairs)
        rows = np.arange(hidden.size)
        lo_h, hi_h, t_h, f_h = lo[hidden], hi[hidden], peak_t[hidden], peak_f[hidden]
        rise = _find_roots(f_hidden, lo_h, t_h, f_hidden(rows, lo_h), f_h, tolerance_s)
        fall = _find_roots(f_hidden, t_h, hi_h, f_h, f_hidden(rows, hi_h), tolerance_s)
        events = np.concatenate([events,
                                 np.column_stack([pairs, np.ones(hidden.size, np.int64)]),
                                 np.column_stack([pairs, np.zeros(hidden.size, np.int64)])])
        event_t = np.concatenate([event_t, rise, fall])

    windows = _pair_events(events, event_t, scan.open_at_start, horizon_s)
    peaks = pd.DataFrame({"sat_index": cand[:, 0], "station_index": cand[:, 1],
                          "t": peak_t, "f": peak_f})
    windows = _attach_peaks(windows, peaks, elevation.sin_mask)
    return ContactPlan(_to_frame(windows, propagator, stations), horizon_s)


@dataclass
class _GridScan:
    crossings: np.ndarray      # rows [sat, station, k, is_rise]: a crossing in [grid k, k+1]
    peaks: np.ndarray          # rows [sat, station, k]: grid local maxima near the mask
    peak_grid_f: np.ndarray    # f at those grid samples
    open_at_start: np.ndarray  # rows [sat, station] visible at t = 0


def _scan_grid(propagator: Propagator, elevation: _ElevationFunction, grid: np.ndarray,
               margin: float) -> _GridScan:
    """One pass over the coarse grid, satellites in chunks to bound memory."""
    crossings, peaks, peak_f, open_at_start = [], [], [], []
    n_sat, n_station = len(propagator), len(elevation.site)
    chunk = max(1, _MAX_POINTS_PER_CHUNK // len(grid))
    for first in range(0, n_sat, chunk):
        sats = np.arange(first, min(first + chunk, n_sat))
        positions = propagator.ecef_grid(grid, sats if len(sats) < n_sat else None)
        for st in range(n_station):
            f = elevation.on_grid(positions, st)
            f = np.where(np.isfinite(f), f, -2.0)  # failed propagation: never visible
            up = f > 0.0
            s, k = np.nonzero(up[:, :-1] != up[:, 1:])
            crossings.append(np.column_stack([sats[s], np.full(k.size, st), k, ~up[s, k]]))
            left = np.pad(f[:, :-1], ((0, 0), (1, 0)), constant_values=-np.inf)
            right = np.pad(f[:, 1:], ((0, 0), (0, 1)), constant_values=-np.inf)
            s, k = np.nonzero((f > left) & (f >= right) & (f > -margin))
            peaks.append(np.column_stack([sats[s], np.full(k.size, st), k]))
            peak_f.append(f[s, k])
            visible = sats[up[:, 0]]
            open_at_start.append(np.column_stack([visible, np.full(visible.size, st)]))
    return _GridScan(
        crossings=np.concatenate(crossings).astype(np.int64).reshape(-1, 4),
        peaks=np.concatenate(peaks).astype(np.int64).reshape(-1, 3),
        peak_grid_f=np.concatenate(peak_f),
        open_at_start=np.concatenate(open_at_start).astype(np.int64).reshape(-1, 2),
    )


def _perigee_altitude_km(line2: str) -> float:
    mean_motion = float(line2[52:63]) * 2.0 * np.pi / 86400.0  # rad/s
    semi_major = (398600.4418 / mean_motion**2) ** (1.0 / 3.0)
    eccentricity = float("0." + line2[26:33])
    return semi_major * (1.0 - eccentricity) - EARTH_RADIUS_KM


def _pair_events(events: np.ndarray, event_t: np.ndarray, open_at_start: np.ndarray,
                 horizon_s: float) -> pd.DataFrame:
    """Pair each rise with the next set of the same (satellite, station)."""
    sat = np.concatenate([events[:, 0], open_at_start[:, 0]])
    st = np.concatenate([events[:, 1], open_at_start[:, 1]])
    t = np.concatenate([event_t, np.zeros(len(open_at_start))])
    rise = np.concatenate([events[:, 2], np.ones(len(open_at_start), np.int64)]).astype(bool)
    order = np.lexsort((rise, t, st, sat))  # at equal times a set sorts before a rise
    sat, st, t, rise = sat[order], st[order], t[order], rise[order]
    i = np.flatnonzero(rise)
    j = np.minimum(i + 1, len(t) - 1)
    closed = (i + 1 < len(t)) & (sat[j] == sat[i]) & (st[j] == st[i]) & ~rise[j]
    return pd.DataFrame({"sat_index": sat[i], "station_index": st[i], "start_s": t[i],
                         "end_s": np.where(closed, t[j], horizon_s)})


def _attach_peaks(windows: pd.DataFrame, peaks: pd.DataFrame,
                  sin_mask: np.ndarray) -> pd.DataFrame:
    """Each window's maximum elevation: the highest refined peak inside it."""
    matched = pd.merge_asof(
        peaks.sort_values("t"), windows.reset_index().sort_values("start_s"),
        left_on="t", right_on="start_s", by=["sat_index", "station_index"],
        direction="backward")
    matched = matched[matched["t"] <= matched["end_s"] + 1e-6]
    best = matched.loc[matched.groupby("index")["f"].idxmax(), ["index", "t", "f"]]
    best = best.set_index("index").reindex(windows.index)
    # A window with no peak inside is monotonic: its highest point is an end.
    sin_el = best["f"].to_numpy() + sin_mask[windows["station_index"].to_numpy()]
    windows = windows.assign(
        max_elevation_deg=np.degrees(np.arcsin(np.clip(sin_el, -1.0, 1.0))),
        max_elevation_s=best["t"].to_numpy())
    return windows


def _to_frame(windows: pd.DataFrame, propagator: Propagator,
              stations: Sequence[GroundStation]) -> pd.DataFrame:
    sat = windows["sat_index"].to_numpy()
    frame = pd.DataFrame({
        "sat_index": sat,
        "satellite": [propagator.elements[i].name for i in sat],
        "norad_id": [propagator.elements[i].catalog_number for i in sat],
        "station": [stations[i].id for i in windows["station_index"]],
        "start_s": windows["start_s"].to_numpy(),
        "end_s": windows["end_s"].to_numpy(),
        "duration_s": (windows["end_s"] - windows["start_s"]).to_numpy(),
        "max_elevation_deg": windows["max_elevation_deg"].to_numpy(),
        "max_elevation_s": windows["max_elevation_s"].to_numpy(),
    }, columns=WINDOW_COLUMNS)
    return frame.sort_values(["start_s", "sat_index", "station"], ignore_index=True)
