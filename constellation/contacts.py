"""Contact windows of every (satellite, station) pair: a coarse grid plus refinement.

Satellites are processed in chunks. SGP4 runs once per chunk on a uniform grid; for every
station g = sin(elevation) - sin(mask) is screened on the grid (float32, all stations in
one matrix product), and near the stations g, g' and g'' are evaluated from SGP4's positions
and velocities and a gravity model's acceleration. Between two grid points, g is the
quintic Hermite interpolant through those values: accurate enough at minute-long steps that
its roots are first guesses within milliseconds.

* Every sign change of g between two grid points is a rise or a set: from the quintic's
  root, a bracketing root finder on g from SGP4's positions alone (constellation/roots.py)
  settles it to within ``tolerance_s`` of a sign change of the position-derived g, so the
  answer does not depend on the grid step. (SGP4's velocity is not the derivative of its
  position, so a slope taken from it would stop short on slow, grazing crossings.)
* Every grid local maximum of g close enough to the mask is a candidate peak: from the
  quintic's g' = 0, the same root finder on a central difference of the position-derived
  g gives the time (to the tolerance where the peak is sharp; on the flat apogee peaks of
  eccentric orbits rounding limits it to milliseconds), and g there the elevation. A peak
  above the mask whose grid samples all lie below it is a short pass the grid stepped
  over; its rise and set are found the same way on either side of the peak.
* Where SGP4 fails (decay), g counts as negative: a pass cut by a decay closes within the
  tolerance of the last instant SGP4 answers, and its peak lies inside it.

Why no pass is missed, however short: over a pass g is unimodal, so one of the two grid
samples around the peak lies within half a step of it, and the grid local maximum is at
least as high. With u the unit vector to the satellite at distance d, moving at v with
acceleration a (Earth-fixed), u'' has the component -|u'|^2 along u and (a_perp - 2 d' u')/d
across it, so |g''| <= |u''| <= (2/sqrt(3)) v^2/d^2 + |a|/d, and that sample lies below
the peak by at most 0.5 |g''| (step/2)^2. Low passes are seen from far away: d is at least
the slant range at the peak's elevation. Every local maximum within 1.5 times the largest
such drop, less the peak's height above the mask, is refined (peak_margin), so every pass
whose peak clears the mask is found.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from .constants import EARTH_RADIUS_KM, EARTH_ROTATION_RAD_S, MU_EARTH_KM3_S2
from .horizon import geometric_mask_deg
from .propagation import Propagator, ecef_acceleration
from .roots import bracketed_root
from .stations import GroundStation

_CHUNK_ELEMENTS = 12_000_000  # satellites x grid points x stations held at once
GUESS_SETTLED_S = 0.01  # the quintic's first guesses; answers settle to the tolerance
_PEAK_ROUNDING = 1e-12  # sets the central difference's step on flat peaks (peaks_at)
_PEAK_MAX_H_S = 5.0
_OSCULATING_DIP_KM = 25.0  # how far the osculating perigee may lie below the mean one
_GEODETIC_TILT_RAD = np.radians(0.2)  # geodetic vs geocentric zenith, at most 0.192 deg
_MARGIN_SAFETY = 1.5
_PEAK_SAMPLES = 400
MASK_SCAN_S = 1.0  # sampling of the elevation against a mask table within a window
_BLOCK = 16384  # rows per block in elementwise geometry
_SCREEN_BLOCK = 4  # satellites per block of the visibility screen

_Columns = dict[str, np.ndarray]  # a table as named columns, cheaper than a DataFrame
WINDOW_COLUMNS = ["sat_index", "satellite", "norad_id", "station", "start_s", "end_s",
                  "duration_s", "max_elevation_deg", "max_elevation_s"]


@dataclass(frozen=True)
class ContactPlan:
    """All windows (one row each, times in seconds since the scenario epoch)."""

    windows: pd.DataFrame
    horizon_s: float

    def for_satellite(self, sat_index: int) -> pd.DataFrame:
        return self.windows[self.windows["sat_index"] == sat_index]


class _QuinticBracket:
    """g on [t0, t0 + h] as the quintic Hermite through g, g' and g'' at both ends (s in
    [0, 1]), as polynomial coefficients. Its error, h^6 |g^(6)| / 46080, puts first guesses
    within milliseconds of the exact roots at minute-long steps: one round of the root
    finder on positions (two SGP4 calls) then settles most of them."""

    def __init__(self, t0, h, g0, g1, rate0, rate1, curv0, curv1):
        self.t0, self.h = t0, h
        self.g0, self.g1, self.m0, self.m1 = g0, g1, rate0 * h, rate1 * h
        p0, p1, m0, m1 = g0, g1, self.m0, self.m1
        c0, c1 = curv0 * h * h, curv1 * h * h
        self.coef = np.array([
            p0, m0, 0.5 * c0,
            10.0 * (p1 - p0) - 6.0 * m0 - 4.0 * m1 - 1.5 * c0 + 0.5 * c1,
            15.0 * (p0 - p1) + 8.0 * m0 + 7.0 * m1 + 1.5 * c0 - c1,
            6.0 * (p1 - p0) - 3.0 * (m0 + m1) - 0.5 * (c0 - c1)])

    def value(self, rows: np.ndarray, s: np.ndarray) -> np.ndarray:
        a = self.coef[:, rows]
        return a[0] + s * (a[1] + s * (a[2] + s * (a[3] + s * (a[4] + s * a[5]))))

    def slope(self, rows: np.ndarray, s: np.ndarray) -> np.ndarray:
        a = self.coef[:, rows]
        return a[1] + s * (2.0 * a[2] + s * (3.0 * a[3] + s * (4.0 * a[4] + s * 5.0 * a[5])))

    def curvature(self, rows: np.ndarray, s: np.ndarray) -> np.ndarray:
        a = self.coef[:, rows]
        return 2.0 * a[2] + s * (6.0 * a[3] + s * (12.0 * a[4] + s * 20.0 * a[5]))

    def root(self, rows: np.ndarray, lo: np.ndarray, hi: np.ndarray, lo_negative: np.ndarray,
             of_slope: bool, tolerance: float) -> np.ndarray:
        """The root in [lo, hi] (in s) of the quintic of ``rows``, or of its slope: safeguarded
        Newton from the secant point through the ends (three or four steps)."""
        value, slope = (self.slope, self.curvature) if of_slope else (self.value, self.slope)
        lo, hi = np.array(lo, dtype=float), np.array(hi, dtype=float)
        f_lo, f_hi = value(rows, lo), value(rows, hi)
        with np.errstate(divide="ignore", invalid="ignore"):
            s = np.clip(lo - f_lo * (hi - lo) / (f_hi - f_lo), lo, hi)
        s = np.where(np.isfinite(s), s, 0.5 * (lo + hi))
        active = np.arange(rows.size)
        for _ in range(60):
            r, x = rows[active], s[active]
            la, ha, step, inside = _newton_step(x, lo[active], hi[active], value(r, x),
                                                slope(r, x), lo_negative[active])
            lo[active], hi[active], s[active] = la, ha, x + step
            active = active[~((np.abs(step) < tolerance) | (ha - la < tolerance))]
            if active.size == 0:
                break
        return s

    def time(self, s: np.ndarray) -> np.ndarray:
        return self.t0 + s * self.h


class _StationGeometry:
    """g = sin(elevation) - sin(mask) and its time derivative, for any station."""

    def __init__(self, stations: Sequence[GroundStation], refraction: bool = False):
        """``refraction``: masks apply to the apparent elevation (constellation/horizon.py),
        so g uses the geometric elevation at which a satellite appears on the mask. Where a
        station has a mask table, g uses the table's lowest point (a bound: every pass
        above the table is above it) and ``mask_sines`` gives the table at each azimuth."""
        self.site = np.array([s.ecef_km() for s in stations])
        self.up = np.array([s.up_unit() for s in stations])
        self.tables = [s.horizon_mask for s in stations]
        self.refraction = refraction
        lowest = [s.min_elevation_deg if t is None else t.lowest_deg
                  for s, t in zip(stations, self.tables)]
        self.sin_mask = np.sin(np.radians(geometric_mask_deg(lowest, refraction)))
        self.masked = np.array([t is not None for t in self.tables], dtype=bool)
        units = [s.east_north_units() for s in stations]
        self.east = np.array([u[0] for u in units]).reshape(-1, 3)
        self.north = np.array([u[1] for u in units]).reshape(-1, 3)
        self._site_unit = self.site / np.linalg.norm(self.site, axis=1, keepdims=True)
        self.min_site_radius_km = float(np.linalg.norm(self.site, axis=1).min())
        self.max_site_radius_km = float(np.linalg.norm(self.site, axis=1).max())
        self._site_xyz, self._up_xyz = self.site.T.copy(), self.up.T.copy()

    def mask_sines(self, pos: np.ndarray, station: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """sin(elevation) of positions (M, 3) seen from ``station[m]``, and the sine of the
        (geometric) mask at their azimuths: the table's where the station has one."""
        rel = pos - self.site[station]
        inv_d = 1.0 / np.linalg.norm(rel, axis=1)
        sin_el = np.einsum("mk,mk->m", rel, self.up[station]) * inv_d
        azimuth = np.degrees(np.arctan2(np.einsum("mk,mk->m", rel, self.east[station]),
                                        np.einsum("mk,mk->m", rel, self.north[station])))
        sin_mask = self.sin_mask[station].copy()
        for k in np.unique(station[self.masked[station]]):
            rows = station == k
            mask = geometric_mask_deg(self.tables[k].at(azimuth[rows]), self.refraction)
            sin_mask[rows] = np.sin(np.radians(mask))
        return sin_el, sin_mask

    def _site_rows(self, station: np.ndarray) -> tuple[np.ndarray, ...]:
        """x, y and z of the sites ``station`` (three 1-d gathers beat one 2-d gather)."""
        return tuple(row[station] for row in self._site_xyz)

    def _up_rows(self, station: np.ndarray) -> tuple[np.ndarray, ...]:
        return tuple(row[station] for row in self._up_xyz)

    def near(self, r: np.ndarray, radius: np.ndarray,
             max_angle_rad: np.ndarray) -> tuple[np.ndarray, ...]:
        """Grid points where a satellite is within ``max_angle_rad[sat]`` (geocentric) of a
        station, and their time neighbours: (sat, station, k) index arrays, sorted by
        satellite, station, time.

        A float32 screen over every (satellite, station, time); all later work is sparse.
        ``radius`` (N, T) is |r|. A few satellites at a time, into reused buffers that stay
        in cache (the whole (N, S, T) product would be fresh memory, paid in page faults).
        A point where SGP4 failed (r = 0: the Earth's centre) is never inside, but stays as
        a time neighbour: g is negative there, so a pass cut by a decay closes at it.
        """
        sites = self._site_unit.astype(np.float32)[None]                 # (1, S, 3)
        r32 = r.astype(np.float32).transpose(0, 2, 1)                    # (N, 3, T)
        limit = (radius * np.cos(max_angle_rad)[:, None]).astype(np.float32)
        n, n_sites, n_times = len(r32), sites.shape[1], r32.shape[2]
        block = max(1, min(_SCREEN_BLOCK, n))
        dots = np.empty((block, n_sites, n_times), dtype=np.float32)
        inside = np.empty(dots.shape, dtype=bool)
        grown = np.empty(dots.shape, dtype=bool)
        found = [np.empty(0, dtype=np.intp)]
        for a in range(0, n, block):
            m = min(block, n - a)
            np.matmul(sites, r32[a:a + m], out=dots[:m])                 # (m, S, T)
            np.greater(dots[:m], limit[a:a + m, None, :], out=inside[:m])
            grown[:m] = inside[:m]
            grown[:m, :, 1:] |= inside[:m, :, :-1]
            grown[:m, :, :-1] |= inside[:m, :, 1:]
            # Flat indices split by hand: np.nonzero walks a 3-d array ten times slower.
            found.append(np.flatnonzero(grown[:m]) + a * n_sites * n_times)
        pair, k = np.divmod(np.concatenate(found), n_times)
        s, station = np.divmod(pair, n_sites)
        return s, station, k

    def value(self, pos: np.ndarray, station: np.ndarray) -> np.ndarray:
        """g alone, for positions (M, 3) seen from ``station[m]``."""
        out = np.empty(len(station))
        for a in range(0, len(station), _BLOCK):
            b = slice(a, a + _BLOCK)
            st = station[b]
            x, y, z = pos[b].T
            (sx, sy, sz), (ux, uy, uz) = self._site_rows(st), self._up_rows(st)
            px, py, pz = x - sx, y - sy, z - sz
            out[b] = ((px * ux + py * uy + pz * uz) / np.sqrt(px * px + py * py + pz * pz)
                      - self.sin_mask[st])
        return out

    def derivatives(self, pos: np.ndarray, vel: np.ndarray, acc: np.ndarray | None,
                    station: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """g, g' and g'' for positions, velocities and accelerations (M, 3) seen from
        ``station[m]`` (the accelerations from ecef_acceleration where None).

        With u the unit vector to the satellite at distance d, g' = up.u' and
        g'' = up.(a - 2 u' d' - u d'') / d, where u' = (v - u d') / d, d' = u.v and
        d'' = (|v|^2 - d'^2) / d + u.a; the acceleration a is ecef_acceleration's model.
        Evaluated in blocks of components: small temporaries are reused by the allocator,
        whereas fresh multi-megabyte arrays cost more in page faults than in arithmetic.
        """
        out = np.empty((3, len(station)))
        for a in range(0, len(station), _BLOCK):
            b = slice(a, a + _BLOCK)
            st = station[b]
            x, y, z = pos[b].T
            vx, vy, vz = vel[b].T
            ax, ay, az = (ecef_acceleration(pos[b], vel[b]) if acc is None else acc[b]).T
            (sx, sy, sz), (ux, uy, uz) = self._site_rows(st), self._up_rows(st)
            px, py, pz = x - sx, y - sy, z - sz
            inv_d = 1.0 / np.sqrt(px * px + py * py + pz * pz)
            sin_el = (px * ux + py * uy + pz * uz) * inv_d
            d1 = (px * vx + py * vy + pz * vz) * inv_d                        # d'
            rate = (vx * ux + vy * uy + vz * uz - sin_el * d1) * inv_d        # up.u'
            d2 = (vx * vx + vy * vy + vz * vz - d1 * d1 + px * ax + py * ay + pz * az) * inv_d
            out[0, b] = sin_el - self.sin_mask[st]
            out[1, b] = rate
            out[2, b] = (ax * ux + ay * uy + az * uz - 2.0 * rate * d1 - sin_el * d2) * inv_d
        return out[0], out[1], out[2]


def _newton_step(t: np.ndarray, lo: np.ndarray, hi: np.ndarray, f: np.ndarray,
                 slope: np.ndarray, lo_negative: np.ndarray) -> tuple[np.ndarray, ...]:
    """One safeguarded Newton step from t, f(t) and f'(t) in brackets [lo, hi] where f is
    negative at lo if ``lo_negative``: the bracket narrowed to the side of t that holds the
    root, and the step, Newton's where it stays inside, else to the bracket's midpoint.
    Returns (lo, hi, step, whether Newton's step was taken)."""
    after = (f <= 0.0) == lo_negative  # the root lies after t
    lo, hi = np.where(after, t, lo), np.where(after, hi, t)
    with np.errstate(divide="ignore", invalid="ignore"):
        newton = t - f / slope
    inside = np.isfinite(newton) & (newton > lo) & (newton < hi)
    return lo, hi, np.where(inside, newton, 0.5 * (lo + hi)) - t, inside


def peak_margin(grid_step_s: float, perigee_km: np.ndarray, apogee_km: np.ndarray,
                sin_mask: np.ndarray, site_radius_km: float) -> np.ndarray:
    """Per satellite, how far below the mask (in g) a grid local maximum can lie while its
    pass still clears the mask: the largest drop 0.5 |g''| (step/2)^2 over peak elevations
    e at or above the mask, less the height sin(e) - sin(mask) of that peak above it.

    Near a peak at distance d, |g''| <= (2/sqrt(3)) v^2/d^2 + |a|/d (module docstring), and
    d is at least the slant range at the peak's elevation: for the lowest orbit point the
    satellite reaches, the highest station, and the elevation raised by the 0.19 degrees a
    geodetic zenith leans from the geocentric one. Passes that peak near the mask are seen
    from far away and curve gently, so the margin stays small even at coarse steps.
    """
    r_p = EARTH_RADIUS_KM + np.maximum(np.asarray(perigee_km) - _OSCULATING_DIP_KM, 100.0)
    r_a = np.maximum(EARTH_RADIUS_KM + np.asarray(apogee_km) + _OSCULATING_DIP_KM, r_p)
    omega = EARTH_ROTATION_RAD_S
    # Earth-fixed speed and acceleration bounds: vis-viva at perigee plus the frame's
    # rotation; gravity with J2 (x 1.01) plus the Coriolis and centrifugal terms.
    speed = np.sqrt(2.0 * MU_EARTH_KM3_S2 * r_a / (r_p * (r_p + r_a))) + omega * r_a
    accel = 1.01 * MU_EARTH_KM3_S2 / r_p**2 + 2.0 * omega * speed + omega**2 * r_a
    margin = np.zeros(len(r_p))
    for sin_m in np.unique(sin_mask):
        sin_peak = np.linspace(sin_m, 1.0, _PEAK_SAMPLES)
        tilted = np.minimum(np.arcsin(sin_peak) + _GEODETIC_TILT_RAD, np.pi / 2)
        x = site_radius_km * np.sin(tilted)
        dist = np.sqrt(x * x + (r_p[:, None] ** 2 - site_radius_km**2)) - x
        curvature = 2.0 / np.sqrt(3.0) * (speed[:, None] / dist) ** 2 + accel[:, None] / dist
        drop = _MARGIN_SAFETY * 0.5 * curvature * (grid_step_s / 2.0) ** 2
        # + one sample spacing, for maxima between the sampled peak elevations
        worst = (drop - (sin_peak - sin_m)).max(axis=1) + (1.0 - sin_m) / (_PEAK_SAMPLES - 1)
        margin = np.maximum(margin, worst)
    return margin


def apsides_km(line2: str) -> tuple[float, float]:
    """Mean perigee and apogee altitudes of an element set's second line."""
    mean_motion = float(line2[52:63]) * 2.0 * np.pi / 86400.0  # rad/s
    semi_major = (MU_EARTH_KM3_S2 / mean_motion**2) ** (1.0 / 3.0)
    eccentricity = float("0." + line2[26:33])
    return (semi_major * (1.0 - eccentricity) - EARTH_RADIUS_KM,
            semi_major * (1.0 + eccentricity) - EARTH_RADIUS_KM)


def compute_contacts(propagator: Propagator, stations: Sequence[GroundStation],
                     horizon_s: float, grid_step_s: float = 90.0, tolerance_s: float = 1e-3,
                     workers: int | None = None,
                     progress: Callable[[int, int], None] | None = None,
                     refraction: bool = False) -> ContactPlan:
    """Every contact window in [0, horizon_s] for all satellites and stations, above each
    station's mask (its table by azimuth where it has one), on the geometric elevation or,
    with ``refraction``, on the apparent one (constellation/horizon.py); peak elevations
    are geometric.

    The grid step sets the cost, not the accuracy: about 90 s balances SGP4 on the grid
    against the extra candidate peaks a coarser grid refines (see peak_margin).
    Chunks of satellites are independent; ``workers`` (default: every core, for large
    jobs) processes them in forked worker processes, since SGP4 holds the GIL.
    ``progress(done, total)`` is called after every chunk. Rises and sets lie within
    ``tolerance_s`` of a crossing of the elevation computed from SGP4's positions; so do
    peak times where the peak is sharp (LEO: measured within 0.05 ms), and on the flat
    apogee peaks of eccentric orbits within milliseconds (GTO 1.2 ms, Molniya 4.4 ms,
    tests/test_contacts_regressions.py), with the elevation itself within 1e-9 deg.
    """
    job = _ContactJob(propagator, _StationGeometry(stations, refraction), horizon_s, grid_step_s,
                      tolerance_s)
    per_sat = len(job.grid) * len(stations)
    n_workers = _worker_count(workers, len(propagator) * per_sat)
    # Equal chunks, a few per worker: a worker slowed by other load takes fewer of them.
    n_chunks = max(-(-len(propagator) * per_sat // _CHUNK_ELEMENTS),
                   _CHUNKS_PER_WORKER * n_workers if n_workers > 1 else 1)
    n_chunks = min(-(-n_chunks // n_workers) * n_workers, max(1, len(propagator)))
    chunks = np.array_split(np.arange(len(propagator)), n_chunks)
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
    return ContactPlan(_to_frame(_concat(frames), propagator, stations), horizon_s)


_PARALLEL_MIN_ELEMENTS = 10_000_000  # below this (~0.5 s of work), forking costs more than it saves
_CHUNKS_PER_WORKER = 4
_FORKED_JOB: "_ContactJob | None" = None


def _worker_count(requested: int | None, elements: int) -> int:
    if requested is not None:
        count = requested
    else:
        count = os.cpu_count() or 1 if elements >= _PARALLEL_MIN_ELEMENTS else 1
    if "fork" not in multiprocessing.get_all_start_methods():
        return 1
    return max(1, count)


def _run_forked_chunk(sats: np.ndarray) -> _Columns:
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

    def windows(self, sats: np.ndarray) -> _Columns:
        """Windows of the satellites ``sats`` (global indices)."""
        everyone = len(sats) == len(self.propagator)
        r, v = self.propagator.states_grid(self.grid, None if everyone else sats)
        r = np.nan_to_num(r, nan=0.0, copy=False)  # at the centre: never near a station
        apsides = np.array([apsides_km(self.propagator.elements[i].line2) for i in sats])
        margin = peak_margin(self.grid_step_s, apsides[:, 0], apsides[:, 1],
                             self.geometry.sin_mask, self.geometry.max_site_radius_km)
        scan = _GridScan(self.propagator, self.geometry, sats, self.grid, r, v, margin,
                         self.tolerance_s)
        crossings, peaks, hidden_passes = scan.events()
        events = _concat([crossings, scan.open_at_start(), hidden_passes])
        windows = _pair_columns(events, self.grid[-1], len(self.geometry.sin_mask))
        keep = windows["start_s"] < self.horizon_s
        windows = {name: column[keep] for name, column in windows.items()}
        windows["end_s"] = np.minimum(windows["end_s"], self.horizon_s)
        windows = _attach_peaks(windows, peaks, self.geometry, self.propagator,
                                self.horizon_s, self.tolerance_s)
        return _apply_masks(windows, self.geometry, self.propagator, self.tolerance_s)


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
        """``r`` and ``v`` (N, T, 3) Earth-fixed; r is zero where SGP4 failed."""
        self.propagator, self.geometry, self.sats = propagator, geometry, sats
        self.grid, self.step = grid, grid[1] - grid[0]
        self.tolerance, self.margin = tolerance_s, margin
        radius = np.sqrt(np.einsum("ntk,ntk->nt", r, r))
        screen = _screen_angle(margin, radius.max(axis=1), geometry)
        s, st, k = geometry.near(r, radius, screen)
        self.s, self.st, self.k = s, st, k
        flat = s * len(grid) + k
        g = self.g = geometry.value(np.take(r.reshape(-1, 3), flat, axis=0), st)
        same_pair = (s[1:] == s[:-1]) & (st[1:] == st[:-1]) & (k[1:] == k[:-1] + 1)
        self.next_adjacent = np.append(same_pair, False)
        self.prev_adjacent = np.insert(same_pair, 0, False)
        # Sign changes between grid points (entry c and c + 1), and grid local maxima near
        # the mask: candidate peaks.
        up = g > 0.0
        self.c = np.flatnonzero(self.next_adjacent & (up != np.roll(up, -1)))
        left = np.where(self.prev_adjacent, np.roll(g, 1), -np.inf)
        right = np.where(self.next_adjacent, np.roll(g, -1), -np.inf)
        self.i = np.flatnonzero((g > left) & (g >= right) & (g > -margin[s]))
        # g' and g'' only where the search reads them: the ends of those intervals.
        need = np.zeros(g.size + 1, dtype=bool)
        need[self.c] = need[self.c + 1] = need[self.i] = True
        need[self.i - 1] |= self.prev_adjacent[self.i]
        need[self.i + 1] |= self.next_adjacent[self.i]
        need = np.flatnonzero(need[:g.size] & (radius[s, k] > 0.0))  # not where SGP4 failed
        self.rate, self.curv = np.full(g.size, np.nan), np.full(g.size, np.nan)
        _, self.rate[need], self.curv[need] = geometry.derivatives(
            np.take(r.reshape(-1, 3), flat[need], axis=0),
            np.take(v.reshape(-1, 3), flat[need], axis=0), None, st[need])

    def quintic(self, i: np.ndarray) -> _QuinticBracket:
        """The quintic on [grid k_i, grid k_i + 1] (entry i + 1 is its right end)."""
        return _QuinticBracket(self.grid[self.k[i]], self.step, self.g[i], self.g[i + 1],
                               self.rate[i], self.rate[i + 1], self.curv[i], self.curv[i + 1])

    def _events(self, i: np.ndarray, t: np.ndarray, rise) -> _Columns:
        return {"sat_index": self.sats[self.s[i]], "station_index": self.st[i],
                "t": np.asarray(t, dtype=float), "rise": np.broadcast_to(rise, i.shape)}

    def g_of(self, i: np.ndarray) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
        """g of entry ``i[row]``'s (satellite, station) at times t, from SGP4's positions
        alone (NaN where SGP4 fails)."""
        def g(rows: np.ndarray, t: np.ndarray) -> np.ndarray:
            e = i[rows]
            return _g_at(self.geometry, self.propagator, self.sats[self.s[e]], self.st[e], t)
        return g

    def crossings_at(self, i: np.ndarray, guess: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                     lo_negative: np.ndarray) -> np.ndarray:
        """Rises or sets of entry i's pair in [lo, hi]: within the tolerance of a sign
        change of the position-derived g (roots.bracketed_root)."""
        return bracketed_root(self.g_of(i), guess, lo, hi, lo_negative, self.tolerance)

    def peaks_at(self, i: np.ndarray, guess: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                 curvature: np.ndarray) -> np.ndarray:
        """Peaks of entry i's pair in [lo, hi]: sign changes, to the tolerance, of the
        central difference D(t) = g(t + h) - g(t - h) of the position-derived g.

        D's root lies within h^2 |g'''| / (6 |g''|) of g's maximum; rounding (about 1e-15
        in g) moves D's sign within 1e-15 / (h |g''|) of it. h is half the tolerance where
        the peak is sharp (LEO) and grows as sqrt(1e-12 / |g''|) on flat peaks (an
        eccentric orbit's apogee), so both stay far below the tolerance.
        """
        with np.errstate(divide="ignore", invalid="ignore"):
            h = np.sqrt(_PEAK_ROUNDING / np.abs(curvature))
        h = np.clip(np.where(np.isfinite(h), h, 0.0), 0.5 * self.tolerance, _PEAK_MAX_H_S)
        g = self.g_of(i)

        def difference(rows: np.ndarray, t: np.ndarray) -> np.ndarray:
            return g(rows, t + h[rows]) - g(rows, t - h[rows])
        return bracketed_root(difference, guess, lo, hi, np.zeros(i.size, dtype=bool),
                              self.tolerance)

    def open_at_start(self) -> _Columns:
        i = np.flatnonzero((self.k == 0) & (self.g > 0.0))
        return self._events(i, np.zeros(i.size), True)

    def events(self) -> tuple[_Columns, _Columns, _Columns]:
        """Rises and sets between grid points; refined peaks of the grid local maxima near
        the mask; and the rises and sets of the passes the grid stepped over. The quintic
        gives first guesses; every answer is settled on SGP4's positions alone."""
        g, grid, tol, c, i = self.g, self.grid, GUESS_SETTLED_S / self.step, self.c, self.i
        up = g > 0.0
        # Rises and sets: first guesses from the quintic (NaN next to a failed grid point:
        # the root finder then starts from the middle).
        q = self.quintic(c)
        rows = np.flatnonzero(np.isfinite(q.coef).all(axis=0))
        guess = np.full(c.size, np.nan)
        guess[rows] = q.t0[rows] + self.step * q.root(
            rows, np.zeros(rows.size), np.ones(rows.size), ~up[c[rows]], False, tol)
        lo = grid[self.k[c]]
        crossings = self._events(c, self.crossings_at(c, guess, lo, lo + self.step, ~up[c]),
                                 ~up[c])

        # Peaks: a grid local maximum has a maximum of g between its grid neighbours; the
        # quintic of the side where g still rises gives the first guess.
        lo = grid[self.k[i] - self.prev_adjacent[i]]
        hi = grid[np.minimum(self.k[i] + self.next_adjacent[i], grid.size - 1)]
        t_peak, g_peak = grid[self.k[i]].astype(float), g[i].copy()  # ends of grid/screen
        inner = np.flatnonzero(hi > lo)
        after = self.rate[i[inner]] > 0.0
        a = np.where(after & self.next_adjacent[i[inner]], i[inner], i[inner] - 1)
        a = np.where(self.prev_adjacent[i[inner]] | (a == i[inner]), a, i[inner])
        q = self.quintic(a)
        sharp = np.flatnonzero((q.m0 > 0.0) & (q.m1 < 0.0))  # g' changes sign inside
        s = np.full(inner.size, np.nan)
        s[sharp] = q.root(sharp, np.zeros(sharp.size), np.ones(sharp.size),
                          np.zeros(sharp.size, dtype=bool), True, tol)
        guess = q.time(s)
        curvature = q.curvature(np.arange(inner.size), np.nan_to_num(s, nan=0.5)) / self.step**2
        found = self.peaks_at(i[inner], guess, lo[inner], hi[inner], curvature)
        g_found = self.g_of(i[inner])(np.arange(inner.size), found)
        better = g_found > g_peak[inner]  # never below the grid sample (NaN: decayed)
        t_peak[inner[better]], g_peak[inner[better]] = found[better], g_found[better]
        peaks = self._events(i, t_peak, False) | {"g": g_peak}

        # Passes whose peak clears the mask between grid points below it: the rise before
        # the peak and the set after it (rows n.. are the sets). Every grid sample in
        # [lo, hi] lies at or below g[i] <= 0, so each side holds one sign change.
        hidden = np.flatnonzero((g_peak > 0.0) & (g[i] <= 0.0))
        n = hidden.size
        twice = np.concatenate([hidden, hidden])
        rising = np.arange(2 * n) < n
        t_h = t_peak[twice]
        both = self.crossings_at(i[twice], np.full(2 * n, np.nan),
                                 np.where(rising, lo[twice], t_h),
                                 np.where(rising, t_h, hi[twice]), rising)
        hidden_passes = _concat([self._events(i[hidden], both[:n], True),
                                 self._events(i[hidden], both[n:], False)])
        return crossings, peaks, hidden_passes


def _screen_angle(margin: np.ndarray, radius_km: np.ndarray,
                  geometry: _StationGeometry) -> np.ndarray:
    """Geocentric angle beyond which a satellite cannot have g > -margin at any station,
    plus half a degree for the geodetic zenith's tilt (0.19 degrees) and float32 rounding.
    The screen adds each point's time neighbours, so that a candidate peak or a visible
    point is never the last examined point."""
    sin_low = np.clip(np.min(geometry.sin_mask) - margin, -1.0, 1.0)
    elevation = np.arcsin(sin_low)
    ratio = np.clip(geometry.min_site_radius_km * np.cos(elevation) / radius_km, -1.0, 1.0)
    return np.arccos(ratio) - elevation + np.radians(0.5)


def _concat(parts: list[_Columns]) -> _Columns:
    return {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}


def _pair_events(events: pd.DataFrame, grid_end: float) -> pd.DataFrame:
    """Pair each rise with the next set of the same (satellite, station) (as a table)."""
    columns = {name: events[name].to_numpy() for name in ("sat_index", "t", "rise")}
    station = np.broadcast_to(events["station_index"].to_numpy(), len(events))
    return pd.DataFrame(_pair_columns(columns | {"station_index": station}, grid_end,
                                      int(station.max(initial=0)) + 1))


def _pair_columns(events: _Columns, grid_end: float, n_stations: int) -> _Columns:
    """Pair each rise with the next set of the same (satellite, station)."""
    sat, st, t = events["sat_index"], events["station_index"], events["t"]
    rise = events["rise"].astype(bool)
    pair = sat.astype(np.int64) * n_stations + st
    order = np.lexsort((rise, t, pair))  # by satellite, station, time, sets first
    sat, st, pair, t, rise = sat[order], st[order], pair[order], t[order], rise[order]
    i = np.flatnonzero(rise)
    j = np.minimum(i + 1, len(t) - 1)
    closed = (i + 1 < len(t)) & (pair[j] == pair[i]) & ~rise[j]
    return {"sat_index": sat[i], "station_index": st[i], "start_s": t[i],
            "end_s": np.where(closed, t[j], grid_end)}


def _attach_peaks(windows: _Columns, peaks: _Columns, geometry: _StationGeometry,
                  propagator: Propagator, horizon_s: float, tolerance_s: float) -> _Columns:
    """Each window's highest point: the best refined peak inside it, or an end.

    A peak belongs to the window of its (satellite, station) that last opened at or
    before it, if that window is still open then (or closed less than the tolerance
    before: a peak at a decay, found on the last positions SGP4 gives, is moved onto the
    window's end). Where a window is cut by either end of the horizon, or holds no peak,
    the higher of its ends competes too; a NaN end (decayed) never wins.
    """
    n_stations = len(geometry.sin_mask)
    sat, st = windows["sat_index"], windows["station_index"]
    start, stop = windows["start_s"], windows["end_s"]
    pair = sat.astype(np.int64) * n_stations + st
    p_pair = peaks["sat_index"].astype(np.int64) * n_stations + peaks["station_index"]
    p_t, p_g = peaks["t"], peaks["g"]
    n = len(sat)
    # Windows and peaks in one order (pair, time, and windows before peaks at equal times:
    # they come first and lexsort is stable); each peak's window is the last window entry
    # before it, if of the same pair.
    order = np.lexsort((np.concatenate([start, p_t]), np.concatenate([pair, p_pair])))
    last = np.maximum.accumulate(np.where(order < n, np.arange(len(order)), -1))
    is_peak = (order >= n) & (last >= 0)
    peak, w = order[is_peak] - n, order[last[is_peak]]
    inside = (pair[w] == p_pair[peak]) & (p_t[peak] <= stop[w] + tolerance_s) & \
        ~np.isnan(p_g[peak])
    peak, w = peak[inside], w[inside]
    # The highest peak of each window (the earliest of equals).
    by_height = np.lexsort((p_t[peak], -p_g[peak], w))
    peak, w = peak[by_height], w[by_height]
    first = np.ones(len(w), dtype=bool)
    first[1:] = w[1:] != w[:-1]
    peak, w = peak[first], w[first]
    best_t, best_g = np.full(n, np.nan), np.full(n, np.nan)
    best_t[w], best_g[w] = p_t[peak], p_g[peak]
    late = np.flatnonzero(best_t > stop)
    best_t[late] = stop[late]
    best_g[late] = _g_at(geometry, propagator, sat[late], st[late], stop[late])
    alone = np.isnan(best_g)
    for t_end_all, cut in ((start, (start <= 0.0) | alone), (stop, (stop >= horizon_s) | alone)):
        idx = np.flatnonzero(cut)
        t_end = t_end_all[idx]
        g_end = _g_at(geometry, propagator, sat[idx], st[idx], t_end)
        higher = (g_end > best_g[idx]) | (np.isnan(best_g[idx]) & ~np.isnan(g_end))
        best_t[idx] = np.where(higher, t_end, best_t[idx])
        best_g[idx] = np.where(higher, g_end, best_g[idx])
    sin_el = np.clip(best_g + geometry.sin_mask[st], -1.0, 1.0)
    return windows | {"max_elevation_deg": np.degrees(np.arcsin(sin_el)),
                      "max_elevation_s": best_t}


def _apply_masks(windows: _Columns, geometry: _StationGeometry, propagator: Propagator,
                 tolerance_s: float) -> _Columns:
    """The windows of stations with a mask table, cut to where the satellite clears the
    table at its azimuth; other windows unchanged.

    Each window above the table's lowest point is scanned every ``MASK_SCAN_S``: every
    change of side between two samples is a crossing, settled by the root finder on
    positions. A window's end where the table is at its lowest stays (the window's own
    rise or set is the masked one). A dip behind the mask, or a rise above a notch in it,
    shorter than the scan step can be missed. A piece keeps the window's peak where it holds
    it, else its higher end (a pass rises to its peak and falls after it).
    """
    rows = np.flatnonzero(geometry.masked[windows["station_index"]])
    if rows.size == 0:
        return windows
    sat, st = windows["sat_index"][rows], windows["station_index"][rows]
    start, stop = windows["start_s"][rows], windows["end_s"][rows]
    counts = np.floor((stop - start) / MASK_SCAN_S).astype(int) + 2
    w = np.repeat(np.arange(rows.size), counts)
    j = np.arange(w.size) - np.repeat(np.cumsum(counts) - counts, counts)
    last = j == counts[w] - 1
    t = np.where(last, stop[w], start[w] + j * MASK_SCAN_S)
    sin_el, sin_mask = geometry.mask_sines(propagator.ecef_at(sat[w], t), st[w])
    visible = sin_el > sin_mask
    at_lowest = sin_mask - geometry.sin_mask[st[w]] <= 1e-12
    visible |= ((j == 0) | last) & at_lowest & ~np.isnan(sin_el)
    before = np.append(False, visible[:-1]) & (j > 0)
    after = np.append(visible[1:], False) & ~last
    rise, fall = np.flatnonzero(visible & ~before), np.flatnonzero(visible & ~after)

    def excess(k: np.ndarray, times: np.ndarray) -> np.ndarray:
        e = np.concatenate([rise, fall])[k]
        above, mask = geometry.mask_sines(propagator.ecef_at(sat[w[e]], times), st[w[e]])
        return above - mask

    inner_rise, inner_fall = j[rise] > 0, ~last[fall]
    lo = np.concatenate([np.where(inner_rise, t[rise - inner_rise], t[rise]), t[fall]])
    hi = np.concatenate([t[rise], np.where(inner_fall, t[np.minimum(fall + 1, t.size - 1)],
                                           t[fall])])
    lo_negative = np.concatenate([np.ones(rise.size, bool), np.zeros(fall.size, bool)])
    crossing = bracketed_root(excess, np.full(lo.size, np.nan), lo, hi, lo_negative,
                              tolerance_s)
    a, b = crossing[:rise.size], crossing[rise.size:]
    a[~inner_rise], b[~inner_fall] = t[rise][~inner_rise], t[fall][~inner_fall]
    piece = w[rise]  # rises and falls alternate within a window, in time order
    peak_t, peak_deg = windows["max_elevation_s"][rows][piece], \
        windows["max_elevation_deg"][rows][piece]
    holds = (peak_t >= a) & (peak_t <= b)
    ends = np.concatenate([a, b])
    end_el = np.degrees(np.arcsin(np.clip(geometry.mask_sines(
        propagator.ecef_at(np.tile(sat[piece], 2), ends), np.tile(st[piece], 2))[0], -1, 1)))
    higher_end = np.where(end_el[rise.size:] > end_el[:rise.size], b, a)
    higher_el = np.fmax(end_el[:rise.size], end_el[rise.size:])
    others = np.setdiff1d(np.arange(len(windows["start_s"])), rows)
    masked = {"sat_index": sat[piece], "station_index": st[piece], "start_s": a, "end_s": b,
              "max_elevation_deg": np.where(holds, peak_deg, higher_el),
              "max_elevation_s": np.where(holds, peak_t, higher_end)}
    return _concat([{name: column[others] for name, column in windows.items()}, masked])


def _g_at(geometry: _StationGeometry, propagator: Propagator, sat: np.ndarray,
          station: np.ndarray, t: np.ndarray) -> np.ndarray:
    """g from SGP4's positions at times t (NaN where SGP4 fails)."""
    return geometry.value(propagator.ecef_at(sat, t), station)


def _to_frame(windows: _Columns, propagator: Propagator,
              stations: Sequence[GroundStation]) -> pd.DataFrame:
    """The plan's table, sorted by start, satellite and station id (sorted on numbers
    before the strings are made: sorting and reordering string columns costs more)."""
    sat, station = windows["sat_index"], windows["station_index"]
    start, end = windows["start_s"], windows["end_s"]
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
        "max_elevation_deg": windows["max_elevation_deg"][order],
        "max_elevation_s": windows["max_elevation_s"][order],
    }, columns=WINDOW_COLUMNS)


def highest_point(propagator: Propagator, station: GroundStation, sat: int, start_s: float,
                  end_s: float, sample_s: float = 1.0,
                  tolerance_s: float = 1e-3) -> tuple[float, float]:
    """Time and elevation (deg) of satellite ``sat``'s highest point over ``station`` in
    [start_s, end_s], for a window whose peak the search could not give (one cut short
    after the search): the best of samples every ``sample_s`` and both ends, refined by a
    golden-section search between its neighbours to ``tolerance_s``. NaN samples (SGP4
    failed) never win. Exact when the elevation has one maximum between two samples."""
    geometry = _StationGeometry([station])
    t = np.append(np.arange(start_s, end_s, sample_s), end_s)

    def g(times: np.ndarray) -> np.ndarray:
        value = _g_at(geometry, propagator, np.full(times.size, sat), np.zeros(times.size, int),
                      times)
        return np.where(np.isnan(value), -np.inf, value)

    samples = g(t)
    k = int(np.argmax(samples))
    a, b = t[max(k - 1, 0)], t[min(k + 1, t.size - 1)]
    ratio = (np.sqrt(5.0) - 1.0) / 2.0
    while b - a > tolerance_s:
        c, d = b - ratio * (b - a), a + ratio * (b - a)
        f_c, f_d = g(np.array([c, d]))
        a, b = (a, d) if f_c > f_d else (c, b)
    best_t, best_g = max([(0.5 * (a + b), g(np.array([0.5 * (a + b)]))[0]),
                          (t[k], samples[k])], key=lambda pair: pair[1])
    sin_el = np.clip(best_g + geometry.sin_mask[0], -1.0, 1.0)
    return float(best_t), float(np.degrees(np.arcsin(sin_el)))
