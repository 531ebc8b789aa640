"""Rain, cloud and gas attenuation on a ground station's slant path, from the ITU-R P-series
as the ``itur`` package (ITU-Rpy) implements it: P.618 (rain, with P.837 rain rate and P.839
rain height), P.840 (cloud) and P.676 (gas), summed as P.618 section 2.5 does without
scintillation (``A = A_gas + A_rain + A_cloud``).

A scenario's ``links.weather`` chooses the time percentage: a fixed availability (the link
budget subtracts the attenuation exceeded ``100 - availability`` % of the time, so every
MODCOD it picks closes at least that share of the time), or one seeded draw per pass (an
exceedance probability uniform on (0, 100) %, clipped to itur's 0.001-50 %). The slow part is
itur itself, so each (site, frequency, percentages) is evaluated once, on a few elevation
nodes, and passes interpolate linearly in cosec(elevation) (gas and cloud are proportional
to it) and in log(percentage). Below 5 deg, where P.840 and P.676's approximate method are
out of range, the 5 deg value is scaled by the curved-Earth path length of ``links.py``.
"""

from __future__ import annotations

import importlib.util
import warnings
from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

import numpy as np

from orbitfl.core.errors import InputError
from orbitfl.core.options import STRICT, option

from .links import atmospheric_loss_db
from .stations import GroundStation

# The recommendation versions ITU-R's validation examples (CG-3M3J-13-ValEx-Rev5_1) check,
# pinned so that results do not move with itur's defaults (tests/test_atmosphere.py).
ITU_VERSIONS = {"itu453": 13, "itu618": 13, "itu676": 11, "itu836": 6, "itu837": 7,
                "itu838": 3, "itu839": 4, "itu840": 7, "itu1510": 1, "itu1511": 1}
NODE_ELEVATIONS_DEG = np.array([5.0, 6.0, 7.0, 8.0, 10.0, 12.0, 15.0, 20.0, 25.0, 30.0, 35.0, 40.0,
                                45.0, 50.0, 55.0, 60.0, 65.0, 70.0, 75.0, 80.0, 83.0, 86.0,
                                88.0, 89.0, 89.7, 90.0])
LOWEST_ITU_ELEVATION_DEG = 5.0
# Exceedance percentages tabulated for per-pass draws (itur's total attenuation: 0.001-50 %).
DRAW_PERCENTS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 3.0, 5.0,
                 10.0, 20.0, 30.0, 50.0)
ANTENNA_DIAMETER_M = 1.0  # itur asks for one; it only enters scintillation, which is left out


@dataclass(frozen=True)
class WeatherSpec:
    """The scenario's ``links.weather`` section: ITU-R attenuation for every DVB-S2 budget
    link (fixed-rate links are unaffected). It replaces the band's clear-sky zenith
    estimate (``zenith_atmospheric_loss_db``), which P.676's gas term covers."""

    __pydantic_config__ = STRICT

    availability: float | None = option(
        None, "share of the time each pass's MODCOD must close: the budget subtracts the "
              "ITU-R attenuation exceeded (100 - availability) % of the time [%]",
        ge=50, le=99.999)
    per_pass_draw: bool = option(
        False, "instead of an availability, draw each pass's weather from the scenario seed "
               "(exceedance probability uniform in 0-100 %, clipped to 0.001-50 %)")
    polarisation_tilt_deg: float = option(
        45.0, "polarisation tilt from the horizontal, for P.618's rain (45: circular) [deg]",
        ge=0, le=90)

    def __post_init__(self) -> None:
        if (self.availability is None) == (not self.per_pass_draw):
            raise ValueError("give either availability or per_pass_draw: true")


def require_itur() -> None:
    """A one-line error when the ``weather`` extra is not installed."""
    if importlib.util.find_spec("itur") is None:
        raise InputError("links.weather needs the ITU-R models of the itur package: pip install "
                         "'orbitfl[weather]'")


@lru_cache(maxsize=1)
def _itur():
    """itur, imported on first use (about 2 s with astropy) with its versions pinned, once:
    pinning a version again drops the climate maps itur has loaded (seconds to reload)."""
    require_itur()
    import itur
    import itur.models as models

    for name, version in ITU_VERSIONS.items():
        getattr(models, name).change_version(version)
    return itur


def site_attenuation_db(lat_deg: float, lon_deg: float, alt_m: float, frequency_ghz: float,
                        elevation_deg: np.ndarray, percent: float, tilt_deg: float = 45.0
                        ) -> np.ndarray:
    """Rain + cloud + gas attenuation (dB) exceeded ``percent`` % of the time on the path
    at ``elevation_deg`` (5-90 deg) from a site: one itur call."""
    itur = _itur()
    with warnings.catch_warnings():  # e.g. P.618's "p outside 0.001-5 %" for rain-free p
        warnings.simplefilter("ignore", RuntimeWarning)
        value = itur.atmospheric_attenuation_slant_path(
            lat_deg, lon_deg, frequency_ghz, np.asarray(elevation_deg, dtype=float), percent,
            ANTENNA_DIAMETER_M, hs=alt_m / 1e3, tau=tilt_deg, include_scintillation=False)
    return np.asarray(value.value, dtype=float)


@lru_cache(maxsize=None)
def attenuation_table(lat_deg: float, lon_deg: float, alt_m: float, frequency_ghz: float,
                      percents: tuple[float, ...], tilt_deg: float) -> np.ndarray:
    """Total attenuation (dB), rows ``percents`` x columns ``NODE_ELEVATIONS_DEG``: itur
    runs once per site, frequency and percentage set, for every pass of a run."""
    return np.array([site_attenuation_db(lat_deg, lon_deg, alt_m, frequency_ghz,
                                         NODE_ELEVATIONS_DEG, p, tilt_deg) for p in percents])


def slant_attenuation_db(table: np.ndarray, percents: Sequence[float],
                         elevation_deg: np.ndarray, percent: np.ndarray) -> np.ndarray:
    """Attenuation from a table at each (elevation, exceedance percentage): linear in
    cosec(elevation) between nodes and in log(percentage) between rows; below 5 deg, the
    5 deg value times the curved-Earth path ratio."""
    elevation = np.asarray(elevation_deg, dtype=float)
    x = _cosec(np.maximum(elevation, LOWEST_ITU_ELEVATION_DEG))
    nodes = _cosec(NODE_ELEVATIONS_DEG)[::-1]  # increasing
    columns = np.array([np.interp(x, nodes, row[::-1]) for row in table])
    if len(percents) == 1:
        value = columns[0]
    else:
        logs = np.log10(np.asarray(percents, dtype=float))
        where = np.log10(np.clip(percent, percents[0], percents[-1]))
        k = np.clip(np.searchsorted(logs, where) - 1, 0, len(logs) - 2)
        w = (where - logs[k]) / (logs[k + 1] - logs[k])
        i = np.arange(len(x))
        value = (1.0 - w) * columns[k, i] + w * columns[k + 1, i]
    low = elevation < LOWEST_ITU_ELEVATION_DEG
    path = atmospheric_loss_db(1.0, elevation) / atmospheric_loss_db(
        1.0, LOWEST_ITU_ELEVATION_DEG)
    return np.where(low, value * path, value)


def _cosec(elevation_deg: np.ndarray) -> np.ndarray:
    return 1.0 / np.sin(np.radians(elevation_deg))


class Weather:
    """The attenuation every link budget of a run subtracts: per station and frequency,
    at the spec's availability or at each pass's drawn percentage (``pass_percent``, one
    per contact window, the same for uplink and downlink: one sky per pass)."""

    def __init__(self, spec: WeatherSpec, stations: Sequence[GroundStation],
                 pass_percent: np.ndarray | None = None):
        if spec.per_pass_draw and pass_percent is None:
            raise ValueError("a per-pass draw needs each window's percentage")
        self.spec, self.stations = spec, list(stations)
        self.pass_percent = pass_percent
        self.percents: tuple[float, ...] = DRAW_PERCENTS
        if not spec.per_pass_draw:
            assert spec.availability is not None  # WeatherSpec holds one or the other
            self.percents = (round(100.0 - spec.availability, 6),)

    @staticmethod
    def draw(n_windows: int, rng: np.random.Generator) -> np.ndarray:
        """One exceedance percentage per window, uniform in (0, 100) %."""
        return 100.0 * rng.uniform(size=n_windows)

    def attenuation_db(self, frequency_ghz: float, station: int, windows: np.ndarray,
                       elevation_deg: np.ndarray) -> np.ndarray:
        """Attenuation (dB) of samples at ``elevation_deg`` in contact windows ``windows``
        (rows of the plan) over ``stations[station]``."""
        site = self.stations[station]
        table = attenuation_table(site.lat_deg, site.lon_deg, site.alt_m, frequency_ghz,
                                  self.percents, self.spec.polarisation_tilt_deg)
        percent = (self.pass_percent[windows] if self.pass_percent is not None
                   else np.full(np.shape(elevation_deg), self.percents[0]))
        return slant_attenuation_db(table, self.percents, elevation_deg, percent)
