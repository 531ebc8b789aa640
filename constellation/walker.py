"""Walker constellations as real TLEs, so designed and real fleets share one path.

Walker-delta i:T/P/F spreads P planes over 360 degrees of right ascension, Walker-star
over 180 degrees (polar shells such as Iridium). Satellite s of plane p has mean anomaly
360 s/S + 360 F p / T (S = T / P per plane). Orbits are circular; the mean motion is the
two-body value for the nominal altitude (SGP4's mean elements then oscillate by a few km
around it, as real shells do).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from datetime import datetime, timezone
from typing import Literal

import numpy as np

from orbitfl.core.errors import short
from orbitfl.core.limits import MAX_SATELLITES
from orbitfl.core.options import STRICT, option

from .constants import EARTH_RADIUS_KM, MU_EARTH_KM3_S2
from .tle import _ALPHA5_LETTERS, ElementSet, parse_tle_text, tle_checksum

FIRST_CATALOG_NUMBER = 80000  # Space-Track's analyst-object range: clashes with no real object
TLE_YEARS = (1957, 2056)
ALPHA5_MAX = (10 + len(_ALPHA5_LETTERS)) * 10000 - 1  # Z9999 = 339999, the last TLE number


@dataclass(frozen=True)
class WalkerShell:
    planes: int
    per_plane: int
    phasing: int
    altitude_km: float
    inclination_deg: float
    pattern: Literal["delta", "star"] = "delta"
    name: str = "WALKER"

    def __post_init__(self) -> None:
        if self.planes < 1 or self.per_plane < 1:
            raise ValueError("a Walker shell needs at least one plane and one satellite")
        if not 0 <= self.phasing < self.planes:
            raise ValueError(f"phasing must be in 0..{self.planes - 1}")
        if self.altitude_km <= 0 or not 0 <= self.inclination_deg <= 180:
            raise ValueError("altitude must be positive and inclination within 0..180 deg")
        if FIRST_CATALOG_NUMBER + self.size - 1 > ALPHA5_MAX:
            raise ValueError(f"{self.size} satellites exceed the Alpha-5 catalog numbers: "
                             f"numbered from {FIRST_CATALOG_NUMBER}, a shell holds at most "
                             f"{ALPHA5_MAX - FIRST_CATALOG_NUMBER + 1}")

    @property
    def size(self) -> int:
        return self.planes * self.per_plane


# Nominal shells (docs/architecture.md). Phasing factors are not published for these
# systems; F = 1 is our choice and a scenario can override it.
PRESETS = {
    "starlink-shell1": WalkerShell(72, 22, 1, 550.0, 53.05, "delta", "STARLINK-W"),
    "iridium-next": WalkerShell(6, 11, 1, 780.0, 86.4, "star", "IRIDIUM-W"),
    "oneweb": WalkerShell(12, 49, 1, 1200.0, 87.9, "star", "ONEWEB-W"),
}


@dataclass(frozen=True)
class WalkerSpec:
    """A designed shell as a scenario writes it (``constellation.walker``): a named preset,
    or every parameter (a preset's may be overridden). Every parameter is optional here,
    which is why it stays apart from the complete ``WalkerShell`` that ``shell()`` makes."""

    __pydantic_config__ = STRICT

    preset: str | None = option(
        None, "a named shell (see 'orbitfl list walker'); the fields below override its values")
    planes: int | None = option(None, "number of orbital planes", gt=0, le=MAX_SATELLITES)
    per_plane: int | None = option(None, "satellites per plane", gt=0, le=MAX_SATELLITES)
    phasing: int | None = option(
        None, "Walker phasing factor F (relative spacing between planes)", ge=0,
        le=MAX_SATELLITES)
    altitude_km: float | None = option(
        None, "circular orbit altitude above the Earth's surface [km]", gt=100, lt=40000)
    inclination_deg: float | None = option(None, "orbit inclination [deg]", ge=0, le=180)
    pattern: Literal["delta", "star"] | None = option(
        None, "delta (planes over 360 deg of RAAN) or star (over 180 deg)")

    def __post_init__(self) -> None:
        if self.preset is not None and self.preset not in PRESETS:
            raise ValueError(f"unknown preset {short(self.preset)}; known: {', '.join(PRESETS)}")
        if self.preset is None:
            missing = [k for k in ("planes", "per_plane", "altitude_km", "inclination_deg")
                       if getattr(self, k) is None]
            if missing:
                raise ValueError(f"give a preset or {', '.join(missing)}")
        preset = PRESETS[self.preset] if self.preset is not None else None
        planes = self.planes or (preset.planes if preset else 0)
        size = planes * (self.per_plane or (preset.per_plane if preset else 0))
        if size > MAX_SATELLITES:
            raise ValueError(f"planes x per_plane is {size} satellites; at most "
                             f"{MAX_SATELLITES}")

    def shell(self) -> WalkerShell:
        """The preset (or a phasing-0 delta shell) with every parameter given here in
        place of its own; raises ``ValueError`` for a shell that cannot fly."""
        given = {f.name: getattr(self, f.name) for f in fields(self)
                 if f.name != "preset" and getattr(self, f.name) is not None}
        base = PRESETS[self.preset] if self.preset else WalkerShell(
            given["planes"], given["per_plane"], 0, given["altitude_km"],
            given["inclination_deg"])
        return replace(base, **given)


def encode_catalog_number(number: int) -> str:
    """The 5-character TLE field, Alpha-5 above 99999 (100000 -> 'A0000')."""
    if number < 100000:
        return f"{number:5d}"
    head, tail = divmod(number, 10000)
    if number > ALPHA5_MAX:
        raise ValueError(f"catalog number {number} exceeds the Alpha-5 range")
    return f"{_ALPHA5_LETTERS[head - 10]}{tail:04d}"


def mean_motion_rev_per_day(altitude_km: float) -> float:
    semi_major = EARTH_RADIUS_KM + altitude_km
    return np.sqrt(MU_EARTH_KM3_S2 / semi_major**3) * 86400.0 / (2.0 * np.pi)


def walker_elements(shell: WalkerShell, epoch: datetime,
                    first_catalog_number: int = FIRST_CATALOG_NUMBER) -> list[ElementSet]:
    """TLEs (with valid checksums) for every satellite of the shell at ``epoch``."""
    epoch = epoch.astimezone(timezone.utc) if epoch.tzinfo else epoch.replace(tzinfo=timezone.utc)
    if not TLE_YEARS[0] <= epoch.year <= TLE_YEARS[1]:
        raise ValueError(f"epoch year {epoch.year} cannot be written in a TLE (two-digit "
                         f"years: {TLE_YEARS[0]} to {TLE_YEARS[1]})")
    start_of_year = datetime(epoch.year, 1, 1, tzinfo=timezone.utc)
    day = 1.0 + (epoch - start_of_year).total_seconds() / 86400.0
    spread = 360.0 if shell.pattern == "delta" else 180.0
    n = mean_motion_rev_per_day(shell.altitude_km)
    lines = []
    for p in range(shell.planes):
        for s in range(shell.per_plane):
            number = first_catalog_number + p * shell.per_plane + s
            cat = encode_catalog_number(number)
            raan = (p * spread / shell.planes) % 360.0
            anomaly = (360.0 * s / shell.per_plane
                       + 360.0 * shell.phasing * p / shell.size) % 360.0
            line1 = (f"1 {cat}U {'':8} {epoch.year % 100:02d}{day:012.8f}  .00000000 "
                     f" 00000-0  00000-0 0  999")
            line2 = (f"2 {cat} {shell.inclination_deg:8.4f} {raan:8.4f} 0000000 "
                     f"{0.0:8.4f} {anomaly:8.4f} {n:11.8f}    0")
            lines += [f"{shell.name}-P{p + 1:02d}-S{s + 1:02d}",
                      line1 + str(tle_checksum(line1)), line2 + str(tle_checksum(line2))]
    return parse_tle_text("\n".join(lines), f"walker:{shell.name}")
