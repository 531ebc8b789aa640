"""Ground stations: the packaged catalog of real sites and their Earth-fixed geometry."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import lru_cache
from importlib.resources import files

import numpy as np
from skyfield.api import wgs84

from orbitfl.errors import InputError


@dataclass(frozen=True)
class GroundStation:
    """A site that can talk to satellites above ``min_elevation_deg``."""

    id: str
    name: str
    lat_deg: float
    lon_deg: float
    alt_m: float
    min_elevation_deg: float = 10.0
    antennas: int = 1

    def ecef_km(self) -> np.ndarray:
        """WGS84 position in the ITRS (skyfield's geodesy, so frames agree exactly)."""
        return wgs84.latlon(self.lat_deg, self.lon_deg, elevation_m=self.alt_m).itrs_xyz.km

    def up_unit(self) -> np.ndarray:
        """Geodetic zenith: elevation is measured from the plane normal to it."""
        lat, lon = np.radians(self.lat_deg), np.radians(self.lon_deg)
        return np.array([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)])


@lru_cache(maxsize=1)
def catalog() -> dict[str, GroundStation]:
    """Packaged real sites (``data/ground_stations.csv``; each row cites its source).

    Rows whose altitude is not sourced use 0 m: a few hundred metres move elevation angles
    of LEO passes by far less than a hundredth of a degree.
    """
    text = files("orbitfl.constellation").joinpath("data/ground_stations.csv").read_text("utf-8")
    stations = {}
    for row in csv.DictReader(text.splitlines()):
        stations[row["id"]] = GroundStation(
            id=row["id"],
            name=row["name"],
            lat_deg=float(row["lat_deg"]),
            lon_deg=float(row["lon_deg"]),
            alt_m=float(row["alt_m"] or 0.0),
        )
    return stations


def from_catalog(site_id: str, min_elevation_deg: float, antennas: int) -> GroundStation:
    sites = catalog()
    if site_id not in sites:
        raise InputError(f"unknown ground station {site_id!r}; known: {', '.join(sorted(sites))}")
    site = sites[site_id]
    return GroundStation(site.id, site.name, site.lat_deg, site.lon_deg, site.alt_m,
                         min_elevation_deg, antennas)
