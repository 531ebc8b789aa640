"""Two-line element sets: strict parsing, validation and selection.

A bad record must never reach SGP4 silently (the C++ parser accepts garbage and propagates
nonsense), so every field is checked here and problems are reported as ``file:line: what``.
"""

from __future__ import annotations

import calendar
import fnmatch
import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable, Sequence

from sgp4 import omm
from sgp4.api import SGP4_ERRORS, Satrec

from orbitfl.core.errors import InputError

TLE_LINE_LENGTH = 69

# Alpha-5 catalog numbers: a letter (I and O are not used) replaces the leading digit.
_ALPHA5_LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"
_CATNR = r"[0-9 ]{5}|[A-HJ-NP-Z][0-9]{4}"
_EXP = r"[ +-][0-9 ]{5}[+-][0-9]"  # TLE "assumed decimal point" exponential field

# (field name, 0-based start, end, regex) per line, from the NORAD two-line format.
_LINE1_FIELDS = (
    ("catalog number", 2, 7, _CATNR),
    ("classification", 7, 8, r"[UCS ]"),
    ("epoch year", 18, 20, r"[0-9]{2}"),
    ("epoch day", 20, 32, r"[ 0-9]{3}\.[0-9]{8}"),
    ("mean motion first derivative", 33, 43, r"[ +-]\.[0-9]{8}|[ +-][0-9]\.[0-9]{7}"),
    ("mean motion second derivative", 44, 52, _EXP),
    ("BSTAR drag term", 53, 61, _EXP),
    ("ephemeris type", 62, 63, r"[0-9 ]"),
    ("element set number", 64, 68, r"[ 0-9]{4}"),
)
_LINE2_FIELDS = (
    ("catalog number", 2, 7, _CATNR),
    ("inclination", 8, 16, r" *[0-9]{1,3}\.[0-9]{1,4}"),
    ("right ascension of the ascending node", 17, 25, r" *[0-9]{1,3}\.[0-9]{1,4}"),
    ("eccentricity", 26, 33, r"[0-9]{7}"),
    ("argument of perigee", 34, 42, r" *[0-9]{1,3}\.[0-9]{1,4}"),
    ("mean anomaly", 43, 51, r" *[0-9]{1,3}\.[0-9]{1,4}"),
    ("mean motion", 52, 63, r" *[0-9]{1,2}\.[0-9]{1,8}"),
    ("revolution number", 63, 68, r"[ 0-9]{5}"),
)


@dataclass(frozen=True)
class ElementSet:
    """One satellite's two-line element set, already validated."""

    name: str
    line1: str
    line2: str
    catalog_number: int
    origin: str  # "file:line" of line 1, for messages
    # Set for OMM records: SGP4 starts from these full-precision fields, and the lines
    # above are their TLE rendering (rounded to TLE precision).
    omm_fields: tuple[tuple[str, Any], ...] | None = None

    def satrec(self) -> Satrec:
        if self.omm_fields is not None:
            sat = Satrec()
            omm.initialize(sat, dict(self.omm_fields))
            return sat
        return Satrec.twoline2rv(self.line1, self.line2)

    @property
    def epoch(self) -> datetime:
        """Epoch of the element set (UTC)."""
        day = float(self.line1[20:32])
        return (datetime(_epoch_year(self.line1), 1, 1, tzinfo=timezone.utc)
                + timedelta(days=day - 1.0))

    @property
    def inclination_deg(self) -> float:
        return float(self.line2[8:16])

    @property
    def mean_motion_rev_per_day(self) -> float:
        return float(self.line2[52:63])


def tle_checksum(line: str) -> int:
    """The mod-10 checksum of a TLE line: digits count their value, each '-' counts 1."""
    total = 0
    for char in line[:68]:
        if char.isdigit():
            total += int(char)
        elif char == "-":
            total += 1
    return total % 10


def decode_catalog_number(field: str) -> int:
    """Catalog number from the 5-character field, including Alpha-5 (A0000 = 100000)."""
    field = field.strip()
    if field and field[0].isalpha():
        return (_ALPHA5_LETTERS.index(field[0]) + 10) * 10000 + int(field[1:])
    return int(field)


def _check_line(line: str, number: int, where: str) -> None:
    if len(line) != TLE_LINE_LENGTH:
        raise InputError(f"{where}: line {number} has {len(line)} characters, expected 69")
    if not line.startswith(f"{number} "):
        raise InputError(f"{where}: expected line {number} to start with '{number} '")
    fields = _LINE1_FIELDS if number == 1 else _LINE2_FIELDS
    for name, start, end, pattern in fields:
        value = line[start:end]
        if not re.fullmatch(pattern, value):
            raise InputError(f"{where}: line {number} {name} field {value!r} is malformed")
    if not line[68].isdigit():
        raise InputError(f"{where}: line {number} checksum {line[68]!r} is not a digit")
    expected = tle_checksum(line)
    if int(line[68]) != expected:
        raise InputError(
            f"{where}: line {number} checksum is {line[68]}, computed {expected} "
            "(corrupted or edited record)"
        )


def _check_values(line1: str, line2: str, where: str) -> None:
    """Physically impossible values that pass the format check."""
    inclination = float(line2[8:16])
    if inclination > 180.0:
        raise InputError(f"{where}: inclination {inclination} deg is above 180")
    for name, start, end in (("right ascension", 17, 25), ("argument of perigee", 34, 42),
                             ("mean anomaly", 43, 51)):
        if float(line2[start:end]) >= 360.0:
            raise InputError(f"{where}: {name} {line2[start:end].strip()} deg is not below 360")
    if float(line2[52:63]) <= 0.0:
        raise InputError(f"{where}: mean motion must be positive")
    day = float(line1[20:32])
    year = _epoch_year(line1)
    if not 1.0 <= day < 1.0 + (366 if calendar.isleap(year) else 365):
        raise InputError(f"{where}: epoch day {day:g} does not exist in {year}")


def _epoch_year(line1: str) -> int:
    """Four-digit epoch year: two-digit years 57-99 are 1957-1999 (the TLE convention)."""
    year = int(line1[18:20])
    return year + (2000 if year < 57 else 1900)


def check_sgp4(sat: Satrec, where: str) -> None:
    """Refuse elements SGP4 cannot start from, or whose orbit dips inside the Earth: they
    would propagate to NaN (decay) or to nonsense from the first sample on."""
    if sat.error:
        raise InputError(f"{where}: SGP4 cannot initialise these elements "
                         f"(error {sat.error}: {SGP4_ERRORS[sat.error]})")
    if sat.altp < 0.0:
        raise InputError(f"{where}: perigee {-sat.altp * sat.radiusearthkm:.0f} km below the "
                         f"Earth's surface (eccentricity {sat.ecco:g}, mean motion "
                         f"{sat.no_kozai * 1440.0 / (2.0 * math.pi):g} rev/day)")


def parse_tle_text(text: str, source: str,
                   skipped: list[str] | None = None) -> list[ElementSet]:
    """Parse 2-line or 3-line (named) element sets; ``source`` names the file in errors.

    With a ``skipped`` list, a bad record is left out and its message appended instead of
    raised (the scenario option ``skip_bad_records``).
    """
    lines = [raw.rstrip("\r\n").rstrip() for raw in text.splitlines()]
    records: list[ElementSet] = []
    pending_name: str | None = None
    index = 0
    while index < len(lines):
        line = lines[index]
        if not line.strip():
            index += 1
            continue
        try:
            if line.startswith("1 "):
                records.append(_parse_record(lines, index, source, pending_name))
                pending_name = None
                index += 2
                continue
            if line.startswith("2 "):
                raise InputError(f"{source}:{index + 1}: line 2 without a preceding line 1")
            if pending_name is not None:  # two name lines in a row: not an element file
                raise InputError(f"{source}:{index + 1}: expected line 1 of an element set "
                                 "(starting '1 ') after the name line above; is this a "
                                 "TLE/3LE file?")
        except InputError as err:
            if skipped is None:
                raise
            skipped.append(str(err))
            pending_name = None
            following = lines[index + 1] if index + 1 < len(lines) else ""
            index += 2 if line.startswith("1 ") and following.startswith("2 ") else 1
            continue
        # A name line; Space-Track 3LE prefixes names with "0 ".
        pending_name = line[2:].strip() if line.startswith("0 ") else line.strip()
        index += 1
    if pending_name is not None:
        message = f"{source}: file ends after a name line, without its element set"
        if skipped is None:
            raise InputError(message)
        skipped.append(message)
    if not records:
        raise InputError(f"{source}: no valid element sets found")
    return records


def _parse_record(lines: list[str], index: int, source: str,
                  name: str | None) -> ElementSet:
    """The record whose line 1 is ``lines[index]``."""
    line1 = lines[index]
    where = f"{source}:{index + 1}"
    if index + 1 >= len(lines) or not lines[index + 1].startswith("2 "):
        raise InputError(f"{where}: line 1 is not followed by its line 2")
    line2 = lines[index + 1]
    _check_line(line1, 1, where)
    _check_line(line2, 2, f"{source}:{index + 2}")
    if line1[2:7] != line2[2:7]:
        raise InputError(f"{where}: catalog numbers differ between line 1 "
                         f"({line1[2:7].strip()}) and line 2 ({line2[2:7].strip()})")
    _check_values(line1, line2, where)
    catnr = decode_catalog_number(line1[2:7])
    record = ElementSet(name if name is not None else f"NORAD {catnr}", line1, line2, catnr,
                        where)
    check_sgp4(record.satrec(), where)
    return record


def select(
    records: Sequence[ElementSet],
    name: str | Iterable[str] | None = None,
    catalog_numbers: Iterable[int] | None = None,
    limit: int | None = None,
) -> list[ElementSet]:
    """Records matching a shell-style name pattern (case-insensitive) and/or catalog numbers.

    Order follows the file, so ``limit`` is reproducible.
    """
    patterns = [name] if isinstance(name, str) else list(name or [])
    wanted = set(catalog_numbers or [])
    chosen = []
    for record in records:
        if patterns and not any(fnmatch.fnmatch(record.name.upper(), p.upper()) for p in patterns):
            continue
        if wanted and record.catalog_number not in wanted:
            continue
        chosen.append(record)
    return chosen[:limit] if limit is not None else chosen
