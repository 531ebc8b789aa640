"""Ground stations: the packaged catalog of real sites and their Earth-fixed geometry."""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass, replace
from functools import lru_cache
from importlib.resources import files

import numpy as np
from skyfield.api import wgs84

from orbitfl.core.errors import InputError

from .horizon import HorizonMask
from .rate_model import RateModel


@dataclass(frozen=True)
class GroundStation:
    """A site that can talk to satellites above ``min_elevation_deg``, or above its
    ``horizon_mask`` by azimuth where it has one (``min_elevation_deg`` is then the
    mask's lowest point)."""

    id: str
    name: str
    lat_deg: float
    lon_deg: float
    alt_m: float
    min_elevation_deg: float = 10.0
    antennas: int = 1  # simultaneous passes: the size of the station's antenna pool
    # What the antennas serve: bands (empty: not published, not checked), and the G/T
    # and EIRP that replace a DVB-S2 budget's (None: the scenario's budget applies).
    bands: tuple[str, ...] = ()
    gt_dbk: float | None = None
    eirp_dbw: float | None = None
    # This site's own links (a scenario's per-site override; None: the scenario's links).
    downlink: RateModel | None = None
    uplink: RateModel | None = None
    # Lowest usable elevation by azimuth (None: min_elevation_deg all round).
    horizon_mask: HorizonMask | None = None

    def ecef_km(self) -> np.ndarray:
        """WGS84 position in the ITRS (skyfield's geodesy, so frames agree exactly)."""
        return wgs84.latlon(self.lat_deg, self.lon_deg, elevation_m=self.alt_m).itrs_xyz.km

    def east_north_units(self) -> tuple[np.ndarray, np.ndarray]:
        """Local east and north (geodetic), for azimuths measured east of north."""
        lat, lon = np.radians(self.lat_deg), np.radians(self.lon_deg)
        east = np.array([-np.sin(lon), np.cos(lon), 0.0])
        north = np.array([-np.sin(lat) * np.cos(lon), -np.sin(lat) * np.sin(lon), np.cos(lat)])
        return east, north

    def up_unit(self) -> np.ndarray:
        """Geodetic zenith: elevation is measured from the plane normal to it."""
        lat, lon = np.radians(self.lat_deg), np.radians(self.lon_deg)
        return np.array([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)])


CATALOG_FILES = ("ground_stations.csv", "station_antennas.csv")


def _rows(name: str) -> list[dict[str, str]]:
    text = files("orbitfl.constellation").joinpath(f"data/{name}").read_text("utf-8")
    return list(csv.DictReader(text.splitlines()))


@lru_cache(maxsize=1)
def catalog_sha256() -> str:
    """SHA-256 of the catalog's files: a scenario that names catalog sites means what the
    catalog says of them (position, mask, antennas, bands), so its content hash includes
    this, as it includes its element file's bytes."""
    digest = hashlib.sha256()
    for name in CATALOG_FILES:
        digest.update(files("orbitfl.constellation").joinpath(f"data/{name}").read_bytes())
    return digest.hexdigest()


@lru_cache(maxsize=1)
def antenna_catalog() -> dict[str, dict[str, str]]:
    """Each site's antennas as published (``data/station_antennas.csv``): count, bands,
    G/T and EIRP, every value with its source or an explicit 'assumed'."""
    return {row["station"]: row for row in _rows("station_antennas.csv")}


@lru_cache(maxsize=1)
def catalog() -> dict[str, GroundStation]:
    """Packaged real sites (``data/ground_stations.csv``, their antennas from
    ``data/station_antennas.csv``; each value cites its source; see ``data/README.md`` for
    which columns are modelling defaults)."""
    antennas = antenna_catalog()
    stations = {}
    for row in _rows("ground_stations.csv"):
        own = antennas[row["id"]]
        stations[row["id"]] = GroundStation(
            id=row["id"],
            name=row["name"],
            lat_deg=float(row["lat_deg"]),
            lon_deg=float(row["lon_deg"]),
            alt_m=float(row["alt_m"] or 0.0),
            min_elevation_deg=float(row["min_elevation_deg"]),
            antennas=int(own["antennas"]),
            bands=tuple(b for b in own["bands"].split("/") if b),
            gt_dbk=float(own["gt_dbk"]) if own["gt_dbk"] else None,
            eirp_dbw=float(own["eirp_dbw"]) if own["eirp_dbw"] else None,
        )
    return stations


# Named ground networks (ids of the catalog).
NETWORKS = {
    "polar": ("svalsat", "trollsat", "kiruna", "inuvik", "fairbanks-asf"),
    "ksat": ("svalsat", "trollsat"),
    "estrack": ("kiruna", "redu", "kourou", "santa-maria", "new-norcia", "cebreros",
                "malargue", "maspalomas"),
    "nasa-nen": ("fairbanks-asf", "wallops"),
    "canada": ("inuvik", "gatineau"),
    "planet": ("fairbanks-planet",),
}


def from_catalog(site_id: str, **overrides) -> GroundStation:
    """A catalog site, with any field overridden (e.g. ``min_elevation_deg=10``)."""
    sites = catalog()
    if site_id not in sites:
        raise InputError(f"unknown ground station {site_id!r}; known: {', '.join(sorted(sites))}")
    return replace(sites[site_id], **{k: v for k, v in overrides.items() if v is not None})
