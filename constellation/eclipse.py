"""Sunlight: the Sun from JPL DE421 (shipped by ``skyfield-data``, never downloaded) and the
Earth's shadow.

Shadow model: conical, with a spherical Earth (R = 6378.137 km, WGS84's equatorial radius)
and the Sun's true radius and distance. ``sunlit_fraction`` is the visible fraction of the
solar disc (1 in sunlight, 0 in the umbra, in between in the penumbra, from the overlap of
the two apparent discs); ``is_sunlit`` asks whether the Sun's centre is visible, the
criterion skyfield uses.
"""

from __future__ import annotations

import warnings
from datetime import datetime, timedelta, timezone
from functools import lru_cache

import numpy as np
from skyfield.api import Loader
from skyfield.sgp4lib import TEME
from skyfield_data import get_skyfield_data_path

from .constants import EARTH_RADIUS_KM, SUN_RADIUS_KM
from .propagation import Clock, teme_to_ecef

SUN_NODE_S = 3600.0
SUN_NODE_MARGIN_S = 2 * SUN_NODE_S  # nodes reach this far outside the interval asked for
J2000 = datetime(2000, 1, 1, 12, tzinfo=timezone.utc)
J2000_JD = 2451545.0


@lru_cache(maxsize=1)
def ephemeris():
    """DE421 from the ``skyfield-data`` package directory (offline).

    ``skyfield-data`` warns that its bundled Earth-orientation file has expired; orbitfl
    reads only DE421 from it (valid 1900-2050), so that warning does not apply.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        path = get_skyfield_data_path()
    return Loader(path, verbose=False)("de421.bsp")


def ephemeris_span() -> tuple[datetime, datetime]:
    """First and last instants DE421 covers (its TDB dates, within 70 s of UTC): the Sun,
    hence sunlight and power, exists only between them."""
    segments = [segment.spk_segment for segment in ephemeris().segments]
    return (_tdb_datetime(max(s.start_jd for s in segments)),
            _tdb_datetime(min(s.end_jd for s in segments)))


def _tdb_datetime(jd: float) -> datetime:
    return J2000 + timedelta(days=jd - J2000_JD)


def sun_ecef_km(clock: Clock, t_s: np.ndarray) -> np.ndarray:
    """Geometric Sun position (T, 3) in the same Earth-fixed frame as the satellites.

    The Sun is computed in TEME on hourly nodes (it moves ~1 deg/day there, so linear
    interpolation errs by ~1e-7 rad) and rotated with the satellites' own GMST.
    """
    t_s = np.asarray(t_s, dtype=float)
    nodes = np.arange(np.floor(t_s.min() / SUN_NODE_S) - 1,
                      np.ceil(t_s.max() / SUN_NODE_S) + 2) * SUN_NODE_S
    t = clock.time(nodes)
    eph = ephemeris()
    sun_teme = (eph["sun"] - eph["earth"]).at(t).frame_xyz(TEME).km  # (3, nodes)
    interpolated = np.stack([np.interp(t_s, nodes, axis) for axis in sun_teme], axis=-1)
    return teme_to_ecef(interpolated, clock.gmst_rad(t_s))


def _disc_angles(r_sat: np.ndarray, r_sun: np.ndarray):
    to_sun = r_sun - r_sat
    d_sun = np.linalg.norm(to_sun, axis=-1)
    d_sat = np.linalg.norm(r_sat, axis=-1)
    sun_radius = np.arcsin(np.clip(SUN_RADIUS_KM / d_sun, -1, 1))
    earth_radius = np.arcsin(np.clip(EARTH_RADIUS_KM / d_sat, -1, 1))
    separation = np.arccos(np.clip(np.einsum("...k,...k->...", -r_sat, to_sun)
                                   / (d_sat * d_sun), -1, 1))
    return sun_radius, earth_radius, separation


def is_sunlit(r_sat: np.ndarray, r_sun: np.ndarray) -> np.ndarray:
    """Whether the Sun's centre is above the Earth's limb, seen from the satellite."""
    _, earth_radius, separation = _disc_angles(r_sat, r_sun)
    return separation >= earth_radius


def sunlit_fraction(r_sat: np.ndarray, r_sun: np.ndarray) -> np.ndarray:
    """Visible fraction of the solar disc (area overlap of two discs; Montenbruck & Gill,
    Satellite Orbits, 3.4.2)."""
    a, b, c = _disc_angles(r_sat, r_sun)
    fraction = np.ones(np.shape(c))
    umbra = c <= b - a
    partial = (c < a + b) & ~umbra
    fraction[umbra] = 0.0
    if partial.any():
        a_, b_, c_ = a[partial], b[partial], c[partial]
        x = (c_**2 + a_**2 - b_**2) / (2 * c_)
        y = np.sqrt(np.clip(a_**2 - x**2, 0, None))
        area = (a_**2 * np.arccos(np.clip(x / a_, -1, 1))
                + b_**2 * np.arccos(np.clip((c_ - x) / b_, -1, 1)) - c_ * y)
        fraction[partial] = 1.0 - area / (np.pi * a_**2)
    return np.clip(fraction, 0.0, 1.0)
