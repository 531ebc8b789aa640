"""Vectorised SGP4 over satellites x times, rotated into the Earth-fixed frame.

SGP4 works in TEME; the Earth-fixed (ITRS, no polar motion) position is TEME rotated by
-GMST1982(UT1) about z, which is exactly the composition skyfield applies (its TEME frame
is ``rot_z(GMST1982 - GAST) @ M`` and its ITRS frame ``rot_z(-GAST) @ M``). UT1 comes
from skyfield's built-in IERS table, so no file is ever downloaded.
"""

from __future__ import annotations

from datetime import datetime, timezone
from functools import lru_cache
from typing import Sequence

import numpy as np
from sgp4.api import SatrecArray, jday
from skyfield.api import Timescale, load
from skyfield.sgp4lib import theta_GMST1982

from .tle import ElementSet

SECONDS_PER_DAY = 86400.0


@lru_cache(maxsize=1)
def timescale() -> Timescale:
    """Skyfield timescale from its bundled leap-second and UT1 tables (offline)."""
    return load.timescale(builtin=True)


class Clock:
    """Maps simulation seconds since ``epoch`` to the time scales SGP4 and frames need."""

    def __init__(self, epoch: datetime):
        if epoch.tzinfo is None:
            epoch = epoch.replace(tzinfo=timezone.utc)
        self.epoch = epoch.astimezone(timezone.utc)
        e = self.epoch
        self._jd, self._fr = jday(e.year, e.month, e.day, e.hour, e.minute,
                                  e.second + e.microsecond * 1e-6)

    def sgp4_time(self, t_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(whole, fraction) UTC Julian dates, as SGP4 expects them (AIAA 2006-6753)."""
        t_s = np.asarray(t_s, dtype=float)
        return np.full(t_s.shape, self._jd), self._fr + t_s / SECONDS_PER_DAY

    def gmst_rad(self, t_s: np.ndarray) -> np.ndarray:
        """Greenwich mean sidereal angle (IAU 1982) at UT1, the TEME -> Earth-fixed angle."""
        e = self.epoch
        t = timescale().utc(e.year, e.month, e.day, e.hour, e.minute,
                            e.second + e.microsecond * 1e-6 + np.asarray(t_s, dtype=float))
        theta, _ = theta_GMST1982(t.whole, t.ut1_fraction)
        return theta


def teme_to_ecef(r_teme: np.ndarray, gmst: np.ndarray) -> np.ndarray:
    """Rotate TEME vectors (..., 3) by -GMST about z; ``gmst`` broadcasts over the leading axes."""
    cos_t, sin_t = np.cos(gmst), np.sin(gmst)
    out = np.empty_like(r_teme)
    out[..., 0] = cos_t * r_teme[..., 0] + sin_t * r_teme[..., 1]
    out[..., 1] = -sin_t * r_teme[..., 0] + cos_t * r_teme[..., 1]
    out[..., 2] = r_teme[..., 2]
    return out


class Propagator:
    """Earth-fixed positions of a fleet, on a shared grid or at per-sample times."""

    def __init__(self, elements: Sequence[ElementSet], clock: Clock):
        self.elements = list(elements)
        self.clock = clock
        self._satrecs = [e.satrec() for e in self.elements]
        self._array = SatrecArray(self._satrecs)

    def __len__(self) -> int:
        return len(self._satrecs)

    def ecef_grid(self, t_s: np.ndarray, sats: np.ndarray | None = None) -> np.ndarray:
        """Positions (N, T, 3) in km at the times ``t_s``; NaN where SGP4 fails (decay).

        ``sats`` restricts the call to some satellites (to bound memory on large fleets).
        """
        array = self._array if sats is None else SatrecArray([self._satrecs[i] for i in sats])
        jd, fr = self.clock.sgp4_time(t_s)
        err, r, _ = array.sgp4(jd, fr)
        r[err != 0] = np.nan
        return teme_to_ecef(r, self.clock.gmst_rad(t_s)[None, :])

    def ecef_at(self, sat_index: np.ndarray, t_s: np.ndarray) -> np.ndarray:
        """Positions (M, 3) in km of satellite ``sat_index[k]`` at time ``t_s[k]``."""
        sat_index = np.asarray(sat_index)
        t_s = np.asarray(t_s, dtype=float)
        jd, fr = self.clock.sgp4_time(t_s)
        r = np.empty((len(t_s), 3))
        order = np.argsort(sat_index, kind="stable")
        bounds = np.flatnonzero(np.diff(sat_index[order])) + 1
        for group in np.split(order, bounds):
            if group.size == 0:
                continue
            err, pos, _ = self._satrecs[sat_index[group[0]]].sgp4_array(jd[group], fr[group])
            pos[err != 0] = np.nan
            r[group] = pos
        return teme_to_ecef(r, self.clock.gmst_rad(t_s))
