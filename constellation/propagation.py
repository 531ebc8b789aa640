"""Vectorised SGP4 over satellites x times, rotated into the Earth-fixed frame.

SGP4 works in TEME; the Earth-fixed (ITRS, no polar motion) position is TEME rotated by
-GMST1982(UT1) about z, which is exactly the composition skyfield applies (its TEME frame
is ``rot_z(GMST1982 - GAST) @ M`` and its ITRS frame ``rot_z(-GAST) @ M``). UT1 comes
from skyfield's built-in IERS table, so no file is ever downloaded.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from functools import lru_cache
from typing import Sequence

import numpy as np
from sgp4.api import Satrec, SatrecArray
from sgp4.earth_gravity import wgs72
from skyfield.api import Timescale, load
from skyfield.sgp4lib import theta_GMST1982
from skyfield.timelib import Time

from .constants import (
    EARTH_RADIUS_KM,
    EARTH_ROTATION_RAD_S,
    MU_EARTH_KM3_S2,
    WGS84_FLATTENING,
)
from .tle import ElementSet

SECONDS_PER_DAY = 86400.0
GMST_NODE_S = 3600.0
# Mean perigee altitude below which a satellite is scanned for decay: the osculating orbit
# swings tens of km about the mean one, and drag lowers it further between screening times.
DECAY_SCREEN_KM = 300.0
DECAY_SCREEN_POINTS = 17


@lru_cache(maxsize=1)
def timescale() -> Timescale:
    """Skyfield timescale from its bundled leap-second and UT1 tables (offline)."""
    return load.timescale(builtin=True)


class Clock:
    """Simulation seconds are SI seconds since ``epoch`` (a UTC instant), like simpy's
    durations. Every time scale derives from them through skyfield: SGP4's UTC Julian date
    (as skyfield's own ``EarthSatellite`` computes it), UT1 for the Earth's rotation, TDB
    for the Sun. So a leap second inside a run shifts none of them against another, and
    UTC labels (``inserted_leap_seconds``) stay right after it.
    """

    def __init__(self, epoch: datetime):
        if epoch.tzinfo is None:
            epoch = epoch.replace(tzinfo=timezone.utc)
        self.epoch = epoch.astimezone(timezone.utc)
        e = self.epoch
        self._start = timescale().utc(e.year, e.month, e.day, e.hour, e.minute,
                                      e.second + e.microsecond * 1e-6)
        # GMST at hourly nodes first..last (node indices), computed once: the contact
        # search asks for a few hours of it thousands of times.
        self._gmst_nodes = (0, -1)
        self._gmst_theta = np.empty(0)

    def time(self, t_s: np.ndarray) -> Time:
        """Skyfield times of simulation seconds ``t_s``."""
        fraction = self._start.tai_fraction + np.asarray(t_s, dtype=float) / SECONDS_PER_DAY
        return timescale().tai_jd(self._start.whole, fraction)

    def sgp4_time(self, t_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(whole, fraction) UTC Julian dates, as SGP4 expects them (AIAA 2006-6753)."""
        t = self.time(t_s)
        fraction = np.asarray(t.tai_fraction - _leap_seconds(t) / SECONDS_PER_DAY)
        return np.full(fraction.shape, float(self._start.whole)), fraction

    def inserted_leap_seconds(self, t_s: np.ndarray) -> np.ndarray:
        """Leap seconds UTC inserted between the epoch and ``t_s``: the UTC label of t_s is
        the epoch plus ``t_s`` minus these."""
        return _leap_seconds(self.time(t_s)) - _leap_seconds(self._start)

    def gmst_rad(self, t_s: np.ndarray) -> np.ndarray:
        """Greenwich mean sidereal angle (IAU 1982) at UT1: the TEME -> Earth-fixed angle.

        Skyfield evaluates it on hourly nodes and the rest is linear interpolation: the
        angle is linear in UT1 and UT1 - UTC drifts by milliseconds per day, so the error is
        below 1e-11 rad, while millions of samples cost microseconds each. (A leap second
        moves UTC, not UT1: the angle stays linear across it.)
        """
        t_s = np.asarray(t_s, dtype=float)
        if t_s.size == 0:
            return np.empty(t_s.shape)
        first = int(np.floor(t_s.min() / GMST_NODE_S)) - 1
        last = int(np.ceil(t_s.max() / GMST_NODE_S)) + 1
        nodes = np.arange(first, last + 1) * GMST_NODE_S
        return np.interp(t_s, nodes, np.unwrap(self._node_gmst(first, last)))

    def _node_gmst(self, first: int, last: int) -> np.ndarray:
        """GMST (rad, not unwrapped) at the nodes ``first..last`` x ``GMST_NODE_S``."""
        low, high = self._gmst_nodes
        if first < low or last > high:
            low, high = (min(first, low), max(last, high)) if high >= low else (first, last)
            t = self.time(np.arange(low, high + 1) * GMST_NODE_S)
            self._gmst_theta = np.atleast_1d(theta_GMST1982(t.whole, t.ut1_fraction)[0])
            self._gmst_nodes = (low, high)
        return self._gmst_theta[first - low:last - low + 1]


def _leap_seconds(t: Time) -> np.ndarray:
    """TAI - UTC at ``t``: skyfield's own lookup, the one its SGP4 time uses."""
    return np.asarray(t._leap_seconds())


def teme_to_ecef(r_teme: np.ndarray, gmst: np.ndarray) -> np.ndarray:
    """Rotate TEME vectors (..., 3) by -GMST about z; ``gmst`` broadcasts over the leading axes."""
    cos_t, sin_t = np.cos(gmst), np.sin(gmst)
    out = np.empty_like(r_teme)
    out[..., 0] = cos_t * r_teme[..., 0] + sin_t * r_teme[..., 1]
    out[..., 1] = -sin_t * r_teme[..., 0] + cos_t * r_teme[..., 1]
    out[..., 2] = r_teme[..., 2]
    return out


def teme_to_ecef_velocity(v_teme: np.ndarray, r_ecef: np.ndarray, gmst: np.ndarray,
                          omega_rad_s: float = EARTH_ROTATION_RAD_S) -> np.ndarray:
    """Earth-fixed velocity: the rotated TEME velocity minus omega x r (AIAA 2006-6753 App. C)."""
    v = teme_to_ecef(v_teme, gmst)
    v[..., 0] += omega_rad_s * r_ecef[..., 1]
    v[..., 1] -= omega_rad_s * r_ecef[..., 0]
    return v


def ecef_acceleration(r_ecef: np.ndarray, v_ecef: np.ndarray) -> np.ndarray:
    """Earth-fixed acceleration (km/s^2) of satellites at r with velocity v, (M, 3): J2
    gravity (WGS72, SGP4's model) plus the rotating frame's Coriolis and centrifugal terms.

    SGP4 gives no acceleration; this model leaves out drag and the higher zonal terms and
    agrees with SGP4's differenced velocities to about 1e-5, plenty for the second
    derivatives that steer the contact search (its answers settle on exact SGP4 states).
    """
    x, y, z = r_ecef[:, 0], r_ecef[:, 1], r_ecef[:, 2]
    r2 = x * x + y * y + z * z
    r = np.sqrt(r2)
    mu_r3 = MU_EARTH_KM3_S2 / (r2 * r)
    j2 = 1.5 * wgs72.j2 * (wgs72.radiusearthkm**2 / r2)
    z2 = 5.0 * z * z / r2
    horizontal = -mu_r3 * (1.0 + j2 * (1.0 - z2))
    a = np.empty_like(r_ecef)
    w = EARTH_ROTATION_RAD_S
    a[:, 0] = horizontal * x + 2.0 * w * v_ecef[:, 1] + w * w * x
    a[:, 1] = horizontal * y - 2.0 * w * v_ecef[:, 0] + w * w * y
    a[:, 2] = -mu_r3 * (1.0 + j2 * (3.0 - z2)) * z
    return a


class Propagator:
    """Earth-fixed states of a fleet, on a shared grid or at per-sample times."""

    def __init__(self, elements: Sequence[ElementSet], clock: Clock):
        self.elements = list(elements)
        self.clock = clock
        self._satrecs = [e.satrec() for e in self.elements]
        self._array = SatrecArray(self._satrecs)

    def __len__(self) -> int:
        return len(self._satrecs)

    def teme_grid(self, t_s: np.ndarray,
                  sats: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """SGP4's own TEME positions (km) and velocities (km/s), each (N, T, 3); NaN where
        SGP4 fails (decay). ``sats`` restricts the call to some satellites."""
        array = self._array if sats is None else SatrecArray([self._satrecs[i] for i in sats])
        jd, fr = self.clock.sgp4_time(t_s)
        err, r, v = array.sgp4(jd, fr)
        failed = err != 0
        if failed.any():
            r[failed] = np.nan
            v[failed] = np.nan
        return r, v

    def states_grid(self, t_s: np.ndarray,
                    sats: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Positions (km) and velocities (km/s), each (N, T, 3), Earth-fixed; NaN where SGP4
        fails (decay). ``sats`` restricts the call to some satellites, to bound memory."""
        r, v = self.teme_grid(t_s, sats)
        gmst = self.clock.gmst_rad(t_s)[None, :]
        r_ecef = teme_to_ecef(r, gmst)
        return r_ecef, teme_to_ecef_velocity(v, r_ecef, gmst)

    def ecef_grid(self, t_s: np.ndarray, sats: np.ndarray | None = None) -> np.ndarray:
        """Positions (N, T, 3) in km at the times ``t_s``."""
        return teme_to_ecef(self.teme_grid(t_s, sats)[0], self.clock.gmst_rad(t_s)[None, :])

    def states_at(self, sat_index: np.ndarray,
                  t_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Earth-fixed position and velocity, (M, 3), of satellite ``sat_index[m]`` at t[m]."""
        sat_index = np.asarray(sat_index)
        t_s = np.asarray(t_s, dtype=float)
        if t_s.size == 0:
            return np.empty((0, 3)), np.empty((0, 3))
        # One SGP4 call per satellite, on contiguous runs of the samples sorted by satellite.
        order = np.argsort(sat_index, kind="stable")
        jd, fr = self.clock.sgp4_time(t_s[order])
        sats = sat_index[order]
        bounds = np.flatnonzero(sats[1:] != sats[:-1]) + 1
        r, v = np.empty((len(t_s), 3)), np.empty((len(t_s), 3))
        for a, b in zip(np.append(0, bounds).tolist(), np.append(bounds, len(sats)).tolist()):
            err, r[a:b], v[a:b] = self._satrecs[sats[a]].sgp4_array(jd[a:b], fr[a:b])
            if err.any():
                r[a:b][err != 0] = np.nan
        gmst = self.clock.gmst_rad(t_s[order])
        r_sorted = teme_to_ecef(r, gmst)
        r_ecef, v_ecef = np.empty_like(r), np.empty_like(v)
        r_ecef[order], v_ecef[order] = r_sorted, teme_to_ecef_velocity(v, r_sorted, gmst)
        return r_ecef, v_ecef

    def ecef_at(self, sat_index: np.ndarray, t_s: np.ndarray) -> np.ndarray:
        """Positions (M, 3) in km of satellite ``sat_index[m]`` at time ``t_s[m]``."""
        return self.states_at(sat_index, t_s)[0]


    def decay_times(self, horizon_s: float, step_s: float = 30.0,
                    tolerance_s: float = 1e-3) -> np.ndarray:
        """Per satellite, the first time in [0, horizon_s] at which SGP4 fails (error 6: the
        orbit has decayed; drag can also drive the mean elements out of range), else inf.

        Only satellites whose mean perigee comes within ``DECAY_SCREEN_KM`` of the surface
        at one of a few screening times are scanned, every ``step_s``. The first dips below
        the surface (at perigee) can be shorter than a step, so the two orbits before the
        first failing sample are scanned again every second, then bisected.
        """
        out = np.full(len(self), np.inf)
        screen = list(zip(*self.clock.sgp4_time(np.linspace(0.0, horizon_s,
                                                             DECAY_SCREEN_POINTS))))
        for i, sat in enumerate(self._satrecs):
            if _may_decay(sat, screen):
                coarse = self._first_failure(sat, 0.0, horizon_s, step_s)
                if coarse is not None:
                    period_s = 2.0 * math.pi / sat.no_kozai * 60.0
                    out[i] = self._first_failure(sat, max(0.0, coarse - 2.0 * period_s),
                                                 coarse, 1.0, tolerance_s)
        return out

    def _first_failure(self, sat: Satrec, start: float, end: float, step_s: float,
                       tolerance_s: float | None = None) -> float | None:
        """The first failing sample of a scan of [start, end] (bisected to ``tolerance_s``
        when given), or None."""
        grid = np.append(np.arange(start, end, step_s), end)
        failed = np.flatnonzero(self._errors(sat, grid))
        if failed.size == 0:
            return None
        k = failed[0]
        if tolerance_s is None or k == 0:
            return float(grid[k])
        good, bad = grid[k - 1], grid[k]
        while bad - good > tolerance_s:
            mid = 0.5 * (good + bad)
            if self._errors(sat, np.array([mid]))[0]:
                bad = mid
            else:
                good = mid
        return float(bad)

    def _errors(self, sat: Satrec, t_s: np.ndarray) -> np.ndarray:
        jd, fr = self.clock.sgp4_time(t_s)
        return sat.sgp4_array(jd, fr)[0]



def _may_decay(sat: Satrec, screen: list[tuple[float, float]]) -> bool:
    """Whether SGP4 fails, or the mean perigee lies below ``DECAY_SCREEN_KM``, at one of
    the screening (whole, fraction) Julian dates."""
    for jd, fr in screen:
        error = sat.sgp4(jd, fr)[0]  # also sets the mean elements of that instant
        if error or (sat.am * (1.0 - sat.em) - 1.0) * sat.radiusearthkm < DECAY_SCREEN_KM:
            return True
    return False


def geodetic(r_ecef: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """WGS84 latitude and longitude (degrees) and height (km) of Earth-fixed points (..., 3).

    Bowring's method with two refinements: sub-millimetre for LEO altitudes.
    """
    x, y, z = r_ecef[..., 0], r_ecef[..., 1], r_ecef[..., 2]
    a, f = EARTH_RADIUS_KM, WGS84_FLATTENING
    b = a * (1.0 - f)
    e2 = f * (2.0 - f)
    ep2 = e2 / (1.0 - e2)
    p = np.hypot(x, y)
    lat = np.arctan2(z, p * (1.0 - e2))
    for _ in range(2):
        beta = np.arctan2((1.0 - f) * np.sin(lat), np.cos(lat))
        lat = np.arctan2(z + ep2 * b * np.sin(beta) ** 3, p - e2 * a * np.cos(beta) ** 3)
    sin_lat = np.sin(lat)
    n = a / np.sqrt(1.0 - e2 * sin_lat**2)
    height = p * np.cos(lat) + (z + e2 * n * sin_lat) * sin_lat - n
    return np.degrees(lat), np.degrees(np.arctan2(y, x)), height
