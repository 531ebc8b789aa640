"""What a station sees above its horizon: azimuth-elevation masks and refraction.

A mask table gives the lowest usable elevation by azimuth (terrain, buildings, the
antenna's keyhole): linear between the listed azimuths and periodic in azimuth, so the last
point joins the first across north. Refraction lifts what the station sees: a satellite at
geometric elevation e appears at e + R, so a mask on the apparent elevation m is crossed
where the geometric elevation is m - R(m). R is skyfield's (Bennett's formula for the
observed altitude, scaled for 10 degC and 1010 mbar, the standard atmosphere skyfield and
the almanacs use; zero below -1 deg and above 89.9 deg).
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from skyfield.earthlib import refraction

from orbitfl.core.errors import InputError, read_user_file

MASK_LOWEST_DEG, MASK_HIGHEST_DEG = -5.0, 90.0
REFRACTION_TEMPERATURE_C = 10.0
REFRACTION_PRESSURE_MBAR = 1010.0
_MAX_MASK_BYTES = 1 << 20
_MAX_MASK_POINTS = 3600


def refraction_deg(apparent_deg: np.ndarray | float) -> np.ndarray:
    """Refraction (deg) at an apparent (observed) elevation, standard atmosphere."""
    return np.asarray(refraction(np.asarray(apparent_deg, dtype=float),
                                 REFRACTION_TEMPERATURE_C, REFRACTION_PRESSURE_MBAR))


def geometric_mask_deg(apparent_deg: npt.ArrayLike, refracted: bool) -> np.ndarray:
    """The geometric elevation at which a satellite appears at ``apparent_deg``."""
    apparent = np.asarray(apparent_deg, dtype=float)
    return apparent - refraction_deg(apparent) if refracted else apparent


@dataclass(frozen=True)
class HorizonMask:
    """Lowest usable elevation by azimuth: ``elevation_deg[k]`` at ``azimuth_deg[k]``
    (degrees east of north, increasing in [0, 360)), linear between, periodic."""

    azimuth_deg: tuple[float, ...]
    elevation_deg: tuple[float, ...]

    def __post_init__(self) -> None:
        problem = table_problem(list(zip(self.azimuth_deg, self.elevation_deg)))
        if problem:
            raise ValueError(problem)

    @classmethod
    def from_pairs(cls, pairs: list[tuple[float, float]] | list[list[float]]) -> "HorizonMask":
        return cls(tuple(float(a) for a, _ in pairs), tuple(float(e) for _, e in pairs))

    def at(self, azimuth_deg: np.ndarray) -> np.ndarray:
        """The mask (deg) at azimuths (deg, any range)."""
        return np.interp(np.asarray(azimuth_deg, dtype=float), self.azimuth_deg,
                         self.elevation_deg, period=360.0)

    @property
    def lowest_deg(self) -> float:
        """The lowest point of the table: linear pieces never dip below their ends."""
        return min(self.elevation_deg)


def table_problem(pairs: list, first_line: int | None = None) -> str | None:
    """What is wrong with a mask table of (azimuth, elevation) pairs, or None. Points are
    named by index, or by line from ``first_line`` (a file's)."""
    if not 1 <= len(pairs) <= _MAX_MASK_POINTS:
        return f"a mask needs 1 to {_MAX_MASK_POINTS} (azimuth, elevation) points, got {len(pairs)}"

    def label(k: int) -> str:
        return f"point {k}" if first_line is None else f"line {first_line + k}"

    for k, pair in enumerate(pairs):
        if len(pair) != 2:
            return f"{label(k)}: expected [azimuth_deg, elevation_deg], got {len(pair)} values"
        azimuth, elevation = pair
        if not (math.isfinite(azimuth) and math.isfinite(elevation)):
            return f"{label(k)}: azimuth and elevation must be numbers, got {azimuth}, {elevation}"
        if not 0.0 <= azimuth < 360.0:
            return f"{label(k)}: azimuth {azimuth:g} deg is outside [0, 360)"
        if not MASK_LOWEST_DEG <= elevation <= MASK_HIGHEST_DEG:
            return (f"{label(k)}: elevation {elevation:g} deg is outside [{MASK_LOWEST_DEG:g}, "
                    f"{MASK_HIGHEST_DEG:g}]")
        if k and azimuth <= pairs[k - 1][0]:
            return (f"{label(k)}: azimuths must increase (azimuth {azimuth:g} deg follows "
                    f"{pairs[k - 1][0]:g} deg)")
    return None


def read_mask_csv(path: Path) -> list[tuple[float, float]]:
    """A mask table from a CSV file with the columns ``azimuth_deg,elevation_deg``; an
    ``InputError`` naming the file and line otherwise."""
    text = read_user_file(path, "horizon mask file", _MAX_MASK_BYTES)
    rows = csv.DictReader(text.splitlines())
    if rows.fieldnames is None or \
            [f.strip() for f in rows.fieldnames] != ["azimuth_deg", "elevation_deg"]:
        raise InputError(f"{path}: line 1: expected the header 'azimuth_deg,elevation_deg'")
    pairs = []
    for row in rows:
        try:
            pairs.append((float(row["azimuth_deg"]), float(row["elevation_deg"])))
        except (TypeError, ValueError):
            raise InputError(f"{path}: line {rows.line_num}: expected two numbers, got "
                             f"{list(row.values())}") from None
    problem = table_problem(pairs, first_line=2)
    if problem:
        raise InputError(f"{path}: {problem}")
    return pairs
