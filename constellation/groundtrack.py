"""Sub-satellite points and the Sun's elevation there: what an imager sees, and when."""

from __future__ import annotations

import numpy as np

from .eclipse import sun_ecef_km
from .propagation import Propagator, geodetic


def ground_tracks(propagator: Propagator, t_s: np.ndarray):
    """Latitude, longitude (deg) and solar elevation (deg) at each satellite's nadir point,
    each (N, T). The Sun's direction is taken from the Earth's centre (parallax < 0.003 deg)."""
    lat, lon, _ = geodetic(propagator.ecef_grid(t_s))
    sun = sun_ecef_km(propagator.clock, t_s)
    sun_unit = sun / np.linalg.norm(sun, axis=1, keepdims=True)
    la, lo = np.radians(lat), np.radians(lon)
    up = np.stack([np.cos(la) * np.cos(lo), np.cos(la) * np.sin(lo), np.sin(la)], axis=-1)
    elevation = np.degrees(np.arcsin(np.clip(np.einsum("ntk,tk->nt", up, sun_unit), -1, 1)))
    return lat, lon, elevation
