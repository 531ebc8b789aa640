"""Contact windows of every (satellite, station) pair: a coarse grid plus refinement.

Satellites are processed in chunks. SGP4 runs once per chunk on a uniform grid; for every
station g = sin(elevation) - sin(mask) is evaluated on the grid (float32, all stations in
one matrix product). Between two grid points, g is the cubic Hermite interpolant through
its exact values and time derivatives there (from SGP4's positions and velocities).

* Every sign change of g between two grid points is a rise or a set: the root of the cubic
  is found by the Illinois method, then polished by Newton steps on exact SGP4 states, so
  the answer does not depend on the grid step.
* Every grid local maximum of g close enough to the mask is a candidate peak: the cubic's
  g' = 0 gives the time, exact SGP4 the elevation. A peak above the mask whose grid samples
  all lie below it is a short pass the grid stepped over; its rise and set are found by the
  Illinois method on exact SGP4 states on either side of the peak.

Why no pass is missed, however short: over a pass g is unimodal, so one of the two grid
samples around the peak lies within half a step of it and is a grid local maximum. Near the
peak |g''| <= (v/d)^2 (a straight-line fly-by at speed v with closest distance d; the
altitude bounds d from below), so that sample lies below the peak by at most
0.5 (v/d)^2 (step/2)^2. Every local maximum within twice that margin of the mask is
refined, so every pass whose peak clears the mask is found.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from orbitfl.constants import EARTH_RADIUS_KM, MU_EARTH_KM3_S2

from .propagation import Propagator
from .stations import GroundStation

_CHUNK_ELEMENTS = 12_000_000  # satellites x grid points x stations held at once
NEWTON_SETTLED_S = 0.01
_BLOCK = 16384  # rows per block in elementwise geometry
_SCREEN_BLOCK = 4  # satellites per block of the visibility screen

WINDOW_COLUMNS = ["sat_index", "satellite", "norad_id", "station", "start_s", "end_s",
                  "duration_s", "max_elevation_deg", "max_elevation_s"]


@dataclass(frozen=True)
class ContactPlan:
    """All windows (one row each, times in seconds since the scenario epoch)."""

    windows: pd.DataFrame
    horizon_s: float

    def for_satellite(self, sat_index: int) -> pd.DataFrame:
        return self.windows[self.windows["sat_index"] == sat_index]


class _CubicBracket:
    """g on [t0, t0 + h] as the cubic Hermite through g and g' at both ends (s in [0, 1])."""

    def __init__(self, t0, h, g0, g1, rate0, rate1):
        self.t0, self.h = t0, h
        self.g0, self.g1, self.m0, self.m1 = g0, g1, rate0 * h, rate1 * h

    def value(self, rows: np.ndarray, s: np.ndarray) -> np.ndarray:
        s2, s3 = s * s, s * s * s
        return ((2 * s3 - 3 * s2 + 1) * self.g0[rows] + (s3 - 2 * s2 + s) * self.m0[rows]
                + (-2 * s3 + 3 * s2) * self.g1[rows] + (s3 - s2) * self.m1[rows])

    def slope(self, rows: np.ndarray, s: np.ndarray) -> np.ndarray:
        s2 = s * s
        return ((6 * s2 - 6 * s) * self.g0[rows] + (3 * s2 - 4 * s + 1) * self.m0[rows]
                + (-6 * s2 + 6 * s) * self.g1[rows] + (3 * s2 - 2 * s) * self.m1[rows])

    def time(self, s: np.ndarray) -> np.ndarray:
        return self.t0 + s * self.h


class _StationGeometry:
    """g = sin(elevation) - sin(mask) and its time derivative, for any station."""

    def __init__(self, stations: Sequence[GroundStation]):
        self.site = np.array([s.ecef_km() for s in stations])
        self.up = np.array([s.up_unit() for s in stations])
        self.sin_mask = np.sin(np.radians([s.min_elevation_deg for s in stations]))
        self._site_unit = self.site / np.linalg.norm(self.site, axis=1, keepdims=True)
        self.min_site_radius_km = float(np.linalg.norm(self.site, axis=1).min())

    def near(self, r: np.ndarray, radius: np.ndarray,
             max_angle_rad: np.ndarray) -> tuple[np.ndarray, ...]:
        """Grid points where a satellite is within ``max_angle_rad[sat]`` (geocentric) of a
        station: (sat, station, k) index arrays, sorted by satellite, station, time.

        A float32 screen over every (satellite, station, time); all later work is sparse.
        ``radius`` (N, T) is |r|. A few satellites at a time, into reused buffers that stay
        in cache (the whole (N, S, T) product would be fresh memory, paid in page faults).
        """
        sites = self._site_unit.astype(np.float32)[None]                 # (1, S, 3)
        r32 = r.astype(np.float32).transpose(0, 2, 1)                    # (N, 3, T)
        limit = (radius * np.cos(max_angle_rad)[:, None]).astype(np.float32)
        n, n_sites, n_times = len(r32), sites.shape[1], r32.shape[2]
        block = max(1, min(_SCREEN_BLOCK, n))
        dots = np.empty((block, n_sites, n_times), dtype=np.float32)
        inside = np.empty(dots.shape, dtype=bool)
        found = [np.empty(0, dtype=np.intp)]
        for a in range(0, n, block):
            m = min(block, n - a)
            np.matmul(sites, r32[a:a + m], out=dots[:m])                 # (m, S, T)
            np.greater(dots[:m], limit[a:a + m, None, :], out=inside[:m])
            # Flat indices split by hand: np.nonzero walks a 3-d array ten times slower.
            found.append(np.flatnonzero(inside[:m]) + a * n_sites * n_times)
        pair, k = np.divmod(np.concatenate(found), n_times)
        s, station = np.divmod(pair, n_sites)
        return s, station, k

    def value_and_rate(self, pos: np.ndarray, vel: np.ndarray,
                       station: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """g and dg/dt for positions and velocities (M, 3) seen from ``station[m]``.

        Evaluated in blocks: small temporaries are reused by the allocator, whereas
        fresh multi-megabyte arrays cost more in page faults than in arithmetic.
        """
        g, rate = np.empty(len(station)), np.empty(len(station))
        for a in range(0, len(station), _BLOCK):
            b = slice(a, a + _BLOCK)
            rho = pos[b] - self.site[station[b]]
            up = self.up[station[b]]
            dist = np.sqrt(_dot(rho, rho))
            rho_up = _dot(rho, up)
            g[b] = rho_up / dist - self.sin_mask[station[b]]
            rate[b] = (_dot(vel[b], up) - rho_up * _dot(rho, vel[b]) / dist**2) / dist
        return g, rate


def _dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise dot products of (M, 3) arrays (twice as fast as einsum for three terms)."""
    return a[:, 0] * b[:, 0] + a[:, 1] * b[:, 1] + a[:, 2] * b[:, 2]


def illinois(fun: Callable[[np.ndarray, np.ndarray], np.ndarray], lo: np.ndarray,
             hi: np.ndarray, f_lo: np.ndarray, f_hi: np.ndarray,
             tolerance_s: float) -> np.ndarray:
    """Vectorised Illinois method; brackets need sign(f_lo) != sign(f_hi).

    ``fun(rows, t)`` evaluates the functions of the bracket ``rows`` at times ``t``.
    """
    lo, hi, f_lo, f_hi = (np.array(a, dtype=float) for a in (lo, hi, f_lo, f_hi))
    rows = np.flatnonzero(hi - lo > tolerance_s)
    # The brackets still open, compacted (no gathers from the full arrays per step).
    a, b, fa, fb = lo[rows], hi[rows], f_lo[rows], f_hi[rows]
    side = np.zeros(rows.size, dtype=np.int8)  # which end moved last (Illinois rule)
    for _ in range(100):
        if rows.size == 0:
            break
        width = b - a
        c = b - fb * width / (fb - fa)
        # Bisect where the secant point is degenerate or hugs an end of the bracket.
        bad = ~np.isfinite(c) | (c <= a + 0.01 * width) | (c >= b - 0.01 * width)
        c = np.where(bad, 0.5 * (a + b), c)
        fc = fun(rows, c)
        root_above = np.sign(fc) == np.sign(fa)  # the root lies in [c, b]
        root_below = ~root_above
        a, fa = np.where(root_above, c, a), np.where(root_above, fc, fa)
        fb = np.where(root_above & (side == 1), fb * 0.5, fb)
        b, fb = np.where(root_below, c, b), np.where(root_below, fc, fb)
        fa = np.where(root_below & (side == -1), fa * 0.5, fa)
        side = np.where(root_above, 1, -1).astype(np.int8)
        open_ = b - a > tolerance_s
        if not open_.all():
            done = ~open_
            lo[rows[done]], hi[rows[done]] = a[done], b[done]
            rows, a, b, fa, fb, side = (x[open_] for x in (rows, a, b, fa, fb, side))
    lo[rows], hi[rows] = a, b
    return 0.5 * (lo + hi)


def peak_margin(grid_step_s: float, min_altitude_km: float) -> float:
    """How far below the mask (in sin(elevation)) a grid local maximum can lie while its
    pass still clears the mask; see the module docstring."""
    altitude = max(min_altitude_km, 100.0)
    orbital = np.sqrt(MU_EARTH_KM3_S2 / (EARTH_RADIUS_KM + altitude))
    speed = orbital + 0.47  # plus the ground's rotation speed at the equator
    return 2.0 * 0.5 * (speed / altitude) ** 2 * (grid_step_s / 2.0) ** 2


def perigee_altitude_km(line2: str) -> float:
    mean_motion = float(line2[52:63]) * 2.0 * np.pi / 86400.0  # rad/s
    semi_major = (MU_EARTH_KM3_S2 / mean_motion**2) ** (1.0 / 3.0)
    return semi_major * (1.0 - float("0." + line2[26:33])) - EARTH_RADIUS_KM


def compute_contacts(propagator: Propagator, stations: Sequence[GroundStation],
                     horizon_s: float, grid_step_s: float = 30.0, tolerance_s: float = 1e-3,
                     workers: int | None = None,
                     progress: Callable[[int, int], None] | None = None) -> ContactPlan:
    """Every contact window in [0, horizon_s] for all satellites and stations.

    Chunks of satellites are independent; ``workers`` (default: every core, for large
    jobs) processes them in forked worker processes, since SGP4 holds the GIL.
    ``progress(done, total)`` is called after every chunk.
    """
    job = _ContactJob(propagator, _StationGeometry(stations), horizon_s, grid_step_s,
                      tolerance_s)
    per_sat = len(job.grid) * len(stations)
    n_workers = _worker_count(workers, len(propagator) * per_sat)
    size = max(1, min(_CHUNK_ELEMENTS // per_sat, -(-len(propagator) // n_workers)))
    chunks = [np.arange(a, min(a + size, len(propagator))) for a in range(0, len(propagator), size)]
    frames = []
    if n_workers > 1:
        global _FORKED_JOB
        _FORKED_JOB = job
        try:
            context = multiprocessing.get_context("fork")
            with ProcessPoolExecutor(n_workers, mp_context=context) as pool:
                for frame in pool.map(_run_forked_chunk, chunks):
                    frames.append(frame)
                    if progress:
                        progress(len(frames), len(chunks))
        finally:
            _FORKED_JOB = None
    else:
        for sats in chunks:
            frames.append(job.windows(sats))
            if progress:
                progress(len(frames), len(chunks))
    return ContactPlan(_to_frame(pd.concat(frames, ignore_index=True), propagator, stations),
                       horizon_s)


_PARALLEL_MIN_ELEMENTS = 20_000_000  # below this, forking costs more than it saves
_FORKED_JOB: "_ContactJob | None" = None


def _worker_count(requested: int | None, elements: int) -> int:
    if requested is not None:
        count = requested
    else:
        count = os.cpu_count() or 1 if elements >= _PARALLEL_MIN_ELEMENTS else 1
    if "fork" not in multiprocessing.get_all_start_methods():
        return 1
    return max(1, count)


def _run_forked_chunk(sats: np.ndarray) -> pd.DataFrame:
    assert _FORKED_JOB is not None, "worker started without a job"
    return _FORKED_JOB.windows(sats)


@dataclass
class _ContactJob:
    """What every chunk of satellites shares."""

    propagator: Propagator
    geometry: _StationGeometry
    horizon_s: float
    grid_step_s: float
    tolerance_s: float

    def __post_init__(self) -> None:
        # The grid runs one step past the horizon, so that a pass ending at the horizon
        # has grid points on both sides; events past the horizon are clipped afterwards.
        self.grid = np.arange(int(np.ceil(self.horizon_s / self.grid_step_s)) + 2) \
            * self.grid_step_s

    def windows(self, sats: np.ndarray) -> pd.DataFrame:
        """Windows of the satellites ``sats`` (global indices)."""
        everyone = len(sats) == len(self.propagator)
        r, v = self.propagator.states_grid(self.grid, None if everyone else sats)
        margin = np.array([peak_margin(self.grid_step_s, perigee_altitude_km(
            self.propagator.elements[i].line2)) for i in sats])
        scan = _GridScan(self.propagator, self.geometry, sats, self.grid, r, v, margin,
                         self.tolerance_s)
        peaks, hidden_passes = scan.peaks()
        events = pd.concat([scan.crossings(), scan.open_at_start(), hidden_passes],
                           ignore_index=True)
        windows = _pair_events(events, self.grid[-1])
        windows = windows[windows["start_s"] < self.horizon_s].reset_index(drop=True)
        windows["end_s"] = np.minimum(windows["end_s"], self.horizon_s)
        return _attach_peaks(windows, peaks, self.geometry, self.propagator, self.horizon_s)


class _GridScan:
    """Rises, sets and peaks of one chunk of satellites.

    Only grid points near a station are examined: outside the screen angle g is far below
    the peak margin, so those points can neither be visible nor be a candidate peak. The
    examined points are sorted by (satellite, station, time); consecutive entries are time
    neighbours when their grid indices differ by one.
    """

    def __init__(self, propagator: Propagator, geometry: _StationGeometry, sats: np.ndarray,
                 grid: np.ndarray, r: np.ndarray, v: np.ndarray, margin: np.ndarray,
                 tolerance_s: float):
        self.propagator, self.geometry, self.sats = propagator, geometry, sats
        self.grid, self.step = grid, grid[1] - grid[0]
        self.tolerance, self.margin = tolerance_s, margin
        r = np.nan_to_num(r, nan=0.0)  # a decayed satellite sits at the centre: never near
        radius = np.sqrt(np.einsum("ntk,ntk->nt", r, r))
        screen = _screen_angle(margin, radius.max(axis=1), geometry, self.step)
        s, st, k = geometry.near(r, radius, screen)
        self.s, self.st, self.k = s, st, k
        flat = s * len(grid) + k
        self.g, self.rate = geometry.value_and_rate(r.reshape(-1, 3)[flat],
                                                    v.reshape(-1, 3)[flat], st)
        same_pair = (s[1:] == s[:-1]) & (st[1:] == st[:-1]) & (k[1:] == k[:-1] + 1)
        self.next_adjacent = np.append(same_pair, False)
        self.prev_adjacent = np.insert(same_pair, 0, False)

    def exact(self, i: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """g and g' of entry ``i``'s (satellite, station) at times t, from exact SGP4."""
        return self.geometry.value_and_rate(
            *self.propagator.states_at(self.sats[self.s[i]], t), self.st[i])

    def cubic(self, i: np.ndarray) -> _CubicBracket:
        """The cubic on [grid k_i, grid k_i + 1] (entry i + 1 is its right end)."""
        return _CubicBracket(self.grid[self.k[i]], self.step, self.g[i], self.g[i + 1],
                             self.rate[i], self.rate[i + 1])

    def _events(self, i: np.ndarray, t: np.ndarray, rise, at_start=False) -> pd.DataFrame:
        return pd.DataFrame({"sat_index": self.sats[self.s[i]], "station_index": self.st[i],
                             "t": t, "rise": rise, "at_start": at_start})

    def crossings(self) -> pd.DataFrame:
        """Sign changes between grid points: cubic root, then Newton on exact states."""
        up = self.g > 0.0
        i = np.flatnonzero(self.next_adjacent & (up != np.roll(up, -1)))
        cubic = self.cubic(i)
        # The cubic is only a first guess (tens of ms off); Newton on exact states finishes.
        u = illinois(cubic.value, np.zeros(i.size), np.ones(i.size), cubic.g0, cubic.g1,
                     NEWTON_SETTLED_S / self.step)
        t = cubic.time(u)
        # Safeguarded Newton on exact states: each step keeps a sign-changing bracket and
        # falls back to bisection whenever Newton would leave it (grazing passes, where g'
        # is small, would otherwise jump to the pass's other root).
        lo, hi = cubic.time(np.zeros(i.size)), cubic.time(np.ones(i.size))
        rising = cubic.g0 <= 0.0
        active = np.arange(i.size)
        for _ in range(60):
            g, rate = self.exact(i[active], t[active])
            below = (g <= 0.0) == rising[active]  # the root lies after t
            lo[active] = np.where(below, t[active], lo[active])
            hi[active] = np.where(below, hi[active], t[active])
            newton = t[active] - np.where(rate != 0.0, g / rate, np.inf)
            inside = np.isfinite(newton) & (newton > lo[active]) & (newton < hi[active])
            step = np.where(inside, newton, 0.5 * (lo[active] + hi[active])) - t[active]
            t[active] += step
            settled = (np.abs(step) < min(NEWTON_SETTLED_S, self.tolerance * 10)) & inside
            settled |= hi[active] - lo[active] < self.tolerance
            active = active[~settled]
            if active.size == 0:
                break
        return self._events(i, t, ~up[i])

    def _refine_peak(self, i: np.ndarray, a: np.ndarray) -> np.ndarray:
        """Peak times: the cubic's g' = 0 as a first guess, then g' = 0 on exact states.

        A secant step across +-1 s of the guess settles most peaks; where g' does not
        change sign there (coarse grids, sharply peaked overhead passes) the Illinois
        method runs on the whole grid interval. 0.05 s at a peak moves sin(elevation) by
        less than 1e-6.
        """
        cubic = self.cubic(a)
        guess = cubic.time(illinois(cubic.slope, np.zeros(a.size), np.ones(a.size),
                                    cubic.m0, cubic.m1, NEWTON_SETTLED_S / self.step))
        lo, hi = cubic.time(np.zeros(a.size)), cubic.time(np.ones(a.size))
        near_lo, near_hi = np.maximum(guess - 1.0, lo), np.minimum(guess + 1.0, hi)
        rate_lo, rate_hi = self.exact(i, near_lo)[1], self.exact(i, near_hi)[1]
        secant = (rate_lo > 0.0) & (rate_hi < 0.0)
        t = near_lo - rate_lo * (near_hi - near_lo) / np.where(secant, rate_hi - rate_lo, -1.0)
        far = np.flatnonzero(~secant)
        if far.size:
            def exact_rate(rows: np.ndarray, x: np.ndarray) -> np.ndarray:
                return self.exact(i[far][rows], x)[1]

            t[far] = illinois(exact_rate, lo[far], hi[far], self.rate[a[far]],
                              self.rate[a[far] + 1], 0.05)
        return t

    def open_at_start(self) -> pd.DataFrame:
        i = np.flatnonzero((self.k == 0) & (self.g > 0.0))
        return self._events(i, np.zeros(i.size), True, at_start=True)

    def peaks(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Refined peaks of grid local maxima near the mask, and the rises and sets of the
        passes the grid stepped over."""
        g = self.g
        left = np.where(self.prev_adjacent, np.roll(g, 1), -np.inf)
        right = np.where(self.next_adjacent, np.roll(g, -1), -np.inf)
        i = np.flatnonzero((g > left) & (g >= right) & (g > -self.margin[self.s]))
        k = self.k[i]
        # The peak lies after grid point k if g still rises there, else before it.
        after = self.rate[i] > 0.0
        a = np.where(after, i, i - 1)  # entry at the left end of the peak's interval
        has_interval = np.where(after, self.next_adjacent[i], self.prev_adjacent[i])
        t_peak = self.grid[k].astype(float)  # the ends of the grid (or of the screen)
        inner = np.flatnonzero(has_interval)
        cubic = self.cubic(a[inner])
        inner = inner[(cubic.m0 > 0.0) & (cubic.m1 < 0.0)]  # g' changes sign: a true peak
        t_peak[inner] = self._refine_peak(i[inner], a[inner])
        g_peak = self.exact(i, t_peak)[0]
        peaks = self._events(i, t_peak, False).assign(g=g_peak)

        hidden = np.flatnonzero((g_peak > 0.0) & (g[i] <= 0.0) & has_interval)
        i, a, t_h, g_h = i[hidden], a[hidden], t_peak[hidden], g_peak[hidden]

        # Rises and sets in one search: rows 0..n-1 are the rises, n..2n-1 the sets.
        twice = np.concatenate([i, i])

        def exact_g(rows: np.ndarray, t: np.ndarray) -> np.ndarray:
            return self.exact(twice[rows], t)[0]

        lo, hi = self.grid[self.k[a]], self.grid[self.k[a] + 1]
        both = illinois(exact_g, np.concatenate([lo, t_h]), np.concatenate([t_h, hi]),
                        np.concatenate([self.g[a], g_h]), np.concatenate([g_h, self.g[a + 1]]),
                        self.tolerance)
        rise, fall = both[:i.size], both[i.size:]
        hidden_passes = pd.concat([self._events(i, rise, True), self._events(i, fall, False)],
                                  ignore_index=True)
        return peaks, hidden_passes


def _screen_angle(margin: np.ndarray, radius_km: np.ndarray, geometry: _StationGeometry,
                  step_s: float) -> np.ndarray:
    """Geocentric angle beyond which a satellite cannot have g > -margin at any station,
    widened by the angle it travels in one grid step (so a candidate peak is never the last
    examined point) plus 2 degrees for geodetic-vs-geocentric and rounding."""
    sin_low = np.clip(np.min(geometry.sin_mask) - margin, -1.0, 1.0)
    elevation = np.arcsin(sin_low)
    ratio = np.clip(geometry.min_site_radius_km * np.cos(elevation) / radius_km, -1.0, 1.0)
    footprint = np.arccos(ratio) - elevation
    horizon_limit = np.arccos(np.clip(geometry.min_site_radius_km / radius_km, -1.0, 1.0))
    footprint = np.minimum(footprint, horizon_limit)
    travel = np.sqrt(MU_EARTH_KM3_S2 / radius_km) / radius_km * step_s
    return footprint + travel + np.radians(2.0)


def _pair_events(events: pd.DataFrame, grid_end: float) -> pd.DataFrame:
    """Pair each rise with the next set of the same (satellite, station)."""
    sat, st = events["sat_index"].to_numpy(), events["station_index"].to_numpy()
    t, rise = events["t"].to_numpy(), events["rise"].to_numpy().astype(bool)
    order = np.lexsort((rise, t, st, sat))  # by satellite, station, time, sets first
    sat, st, t, rise = sat[order], st[order], t[order], rise[order]
    i = np.flatnonzero(rise)
    j = np.minimum(i + 1, len(t) - 1)
    closed = (i + 1 < len(t)) & (sat[j] == sat[i]) & (st[j] == st[i]) & ~rise[j]
    return pd.DataFrame({"sat_index": sat[i], "station_index": st[i], "start_s": t[i],
                         "end_s": np.where(closed, t[j], grid_end)})


def _attach_peaks(windows: pd.DataFrame, peaks: pd.DataFrame, geometry: _StationGeometry,
                  propagator: Propagator, horizon_s: float) -> pd.DataFrame:
    """Each window's highest point: the best refined peak inside it, or a clipped end.

    ``windows`` has a range index. A peak belongs to the window of its (satellite, station)
    that last opened at or before it, if that window is still open then.
    """
    sat, st = windows["sat_index"].to_numpy(), windows["station_index"].to_numpy()
    start, stop = windows["start_s"].to_numpy(), windows["end_s"].to_numpy()
    p_sat, p_st = peaks["sat_index"].to_numpy(), peaks["station_index"].to_numpy()
    p_t, p_g = peaks["t"].to_numpy(), peaks["g"].to_numpy()
    n = len(windows)
    # Windows and peaks in one order (pair, time, windows before peaks at equal times);
    # each peak's window is the last window entry before it, if of the same pair.
    pair_sat, pair_st = np.concatenate([sat, p_sat]), np.concatenate([st, p_st])
    order = np.lexsort((np.arange(len(pair_sat)) >= n, np.concatenate([start, p_t]),
                        pair_st, pair_sat))
    last = np.maximum.accumulate(np.where(order < n, np.arange(len(order)), -1))
    is_peak = (order >= n) & (last >= 0)
    peak, w = order[is_peak] - n, order[last[is_peak]]
    inside = ((sat[w] == p_sat[peak]) & (st[w] == p_st[peak]) & (p_t[peak] <= stop[w])
              & ~np.isnan(p_g[peak]))
    peak, w = peak[inside], w[inside]
    # The highest peak of each window (the earliest of equals).
    by_height = np.lexsort((p_t[peak], -p_g[peak], w))
    peak, w = peak[by_height], w[by_height]
    first = np.ones(len(w), dtype=bool)
    first[1:] = w[1:] != w[:-1]
    peak, w = peak[first], w[first]
    best_t, best_g = np.full(n, np.nan), np.full(n, np.nan)
    best_t[w], best_g[w] = p_t[peak], p_g[peak]
    # Where a window is cut by either end of the horizon, that end may be its highest point.
    for end, cut in (("start_s", windows["start_s"] <= 0.0),
                     ("end_s", windows["end_s"] >= horizon_s)):
        idx = np.flatnonzero(cut.to_numpy())
        t_end = windows[end].to_numpy()[idx]
        g_end = geometry.value_and_rate(*propagator.states_at(sat[idx], t_end), st[idx])[0]
        higher = ~(best_g[idx] >= g_end)  # also where no peak lies inside (NaN)
        best_t[idx] = np.where(higher, t_end, best_t[idx])
        best_g[idx] = np.where(higher, g_end, best_g[idx])
    sin_el = np.clip(best_g + geometry.sin_mask[st], -1.0, 1.0)
    return windows.assign(max_elevation_deg=np.degrees(np.arcsin(sin_el)),
                          max_elevation_s=best_t)


def _to_frame(windows: pd.DataFrame, propagator: Propagator,
              stations: Sequence[GroundStation]) -> pd.DataFrame:
    """The plan's table, sorted by start, satellite and station id (sorted on numbers
    before the strings are made: sorting and reordering string columns costs more)."""
    sat = windows["sat_index"].to_numpy()
    station = windows["station_index"].to_numpy()
    start, end = windows["start_s"].to_numpy(), windows["end_s"].to_numpy()
    names = np.array([e.name for e in propagator.elements], dtype=object)
    norad = np.array([e.catalog_number for e in propagator.elements])
    station_ids = np.array([s.id for s in stations], dtype=object)
    _, station_rank = np.unique(station_ids.astype(str), return_inverse=True)
    order = np.lexsort((station_rank[station], sat, start))
    sat, station, start, end = sat[order], station[order], start[order], end[order]
    return pd.DataFrame({
        "sat_index": sat,
        "satellite": names[sat],
        "norad_id": norad[sat],
        "station": station_ids[station],
        "start_s": start,
        "end_s": end,
        "duration_s": end - start,
        "max_elevation_deg": windows["max_elevation_deg"].to_numpy()[order],
        "max_elevation_s": windows["max_elevation_s"].to_numpy()[order],
    }, columns=WINDOW_COLUMNS)
