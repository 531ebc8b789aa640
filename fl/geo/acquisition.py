"""Which tiles each satellite images: its own sunlit ground track, real land cover under it,
and clouds from a climatological cloud model.

Ground tracks come from the runner as plain arrays (time, latitude, longitude, solar
elevation at the sub-satellite point), so this module needs no orbit code.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .landcover import CLOUD, SCENE_CLASSES, scene_at

# Zonal-mean cloud fraction against |latitude|: the shape of the MODIS annual climatology
# (cloudy ITCZ, clear subtropical highs, cloudiest mid-latitude storm tracks near 60 deg).
# An approximation for a simulator, not a data product.
_CLOUD_LAT = np.array([0, 10, 20, 30, 45, 60, 75, 90], dtype=float)
_CLOUD_FRACTION = np.array([0.62, 0.58, 0.42, 0.45, 0.62, 0.75, 0.65, 0.60])
# Surface modifiers: deserts are rarely cloudy, oceans a little more than land.
_CLOUD_FACTOR = {"barren": 0.35, "water": 1.08, "snow_ice": 0.9, "shrub_savanna": 0.8,
                 "grassland": 0.9}


@dataclass(frozen=True)
class GroundTrack:
    t_s: np.ndarray
    lat_deg: np.ndarray
    lon_deg: np.ndarray
    sun_elevation_deg: np.ndarray


@dataclass(frozen=True)
class Acquisition:
    """One satellite's images, before rendering."""

    labels: np.ndarray
    sun_elevation_deg: np.ndarray
    lat_deg: np.ndarray
    lon_deg: np.ndarray
    t_s: np.ndarray


def cloud_probability(lat_deg: np.ndarray, scene: np.ndarray) -> np.ndarray:
    base = np.interp(np.abs(lat_deg), _CLOUD_LAT, _CLOUD_FRACTION)
    factor = np.ones(len(scene))
    for name, value in _CLOUD_FACTOR.items():
        factor[scene == SCENE_CLASSES.index(name)] = value
    return np.clip(base * factor, 0.0, 1.0)


def acquire(track: GroundTrack, min_sun_elevation_deg: float, rng: np.random.Generator,
            clouds: bool = True) -> Acquisition:
    """One tile per track sample with the ground sunlit enough to image."""
    lit = track.sun_elevation_deg >= min_sun_elevation_deg
    lat, lon = track.lat_deg[lit], track.lon_deg[lit]
    labels = scene_at(lat, lon).astype(np.int64)
    if clouds:
        cloudy = rng.random(len(labels)) < cloud_probability(lat, labels)
        labels = np.where(cloudy, CLOUD, labels)
    return Acquisition(labels, track.sun_elevation_deg[lit], lat, lon, track.t_s[lit])
