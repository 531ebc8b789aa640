"""Orbit Mean-Elements Messages (CCSDS OMM) as CelesTrak and Space-Track publish them, in
JSON and CSV. Each record becomes an ``ElementSet``: SGP4 is initialised from the OMM's
full-precision fields, and the equivalent TLE lines (from ``sgp4.exporter``) serve for
display, hashing and the helpers that read TLE columns.
"""

from __future__ import annotations

import csv
import io
import json
import math
from datetime import datetime, timezone
from typing import Any

from sgp4 import omm
from sgp4.api import Satrec
from sgp4.exporter import export_tle

from orbitfl.errors import InputError

from .tle import ElementSet

REQUIRED = ("OBJECT_NAME", "EPOCH", "MEAN_MOTION", "ECCENTRICITY", "INCLINATION",
            "RA_OF_ASC_NODE", "ARG_OF_PERICENTER", "MEAN_ANOMALY", "NORAD_CAT_ID", "BSTAR",
            "MEAN_MOTION_DOT")
_DEFAULTS = {"CLASSIFICATION_TYPE": "U", "OBJECT_ID": "", "EPHEMERIS_TYPE": 0,
             "ELEMENT_SET_NO": 999, "REV_AT_EPOCH": 0, "MEAN_MOTION_DDOT": 0.0}
_NUMERIC = ("MEAN_MOTION", "ECCENTRICITY", "INCLINATION", "RA_OF_ASC_NODE",
            "ARG_OF_PERICENTER", "MEAN_ANOMALY", "BSTAR", "MEAN_MOTION_DOT", "MEAN_MOTION_DDOT")


def parse_omm_json(text: str, source: str,
                   skipped: list[str] | None = None) -> list[ElementSet]:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as err:
        raise InputError(f"{source}:{err.lineno}: invalid JSON ({err.msg})") from None
    records = document if isinstance(document, list) else [document]
    if not all(isinstance(r, dict) for r in records):
        raise InputError(f"{source}: expected a JSON object or a list of OMM objects")
    return _collect(((r, f"{source}: record {i + 1}") for i, r in enumerate(records)),
                    source, skipped)


def parse_omm_csv(text: str, source: str,
                  skipped: list[str] | None = None) -> list[ElementSet]:
    rows = csv.DictReader(io.StringIO(text))
    # Line numbers: the header is line 1, so record i sits on line i + 2.
    return _collect(((r, f"{source}:{i + 2}") for i, r in enumerate(rows)), source, skipped)


def _collect(records, source: str, skipped: list[str] | None) -> list[ElementSet]:
    """Parse every record; with a ``skipped`` list, bad records are reported, not raised."""
    out = []
    for record, where in records:
        try:
            out.append(_element_set(record, where))
        except InputError as err:
            if skipped is None:
                raise
            skipped.append(str(err))
    if not out:
        raise InputError(f"{source}: no valid element sets found")
    return out


def _element_set(record: dict[str, Any], where: str) -> ElementSet:
    fields = {k.upper(): v for k, v in record.items() if k is not None}
    missing = [k for k in REQUIRED if fields.get(k) in (None, "")]
    if missing:
        raise InputError(f"{where}: OMM record lacks {', '.join(missing)}")
    for key, value in _DEFAULTS.items():
        if fields.get(key) in (None, ""):
            fields[key] = value
    for key in _NUMERIC:
        try:
            value = float(fields[key])
        except (TypeError, ValueError):
            raise InputError(f"{where}: {key} {fields[key]!r} is not a number") from None
        if not math.isfinite(value):
            raise InputError(f"{where}: {key} is not finite")
        fields[key] = value
    try:
        fields["NORAD_CAT_ID"] = int(fields["NORAD_CAT_ID"])
    except (TypeError, ValueError):
        raise InputError(f"{where}: NORAD_CAT_ID {fields['NORAD_CAT_ID']!r} is not an "
                         "integer") from None
    _check_ranges(fields, where)
    fields["EPOCH"] = _normalise_epoch(fields, where)
    sat = Satrec()
    try:
        omm.initialize(sat, fields)
        line1, line2 = export_tle(sat)
    except (ValueError, KeyError) as err:
        raise InputError(f"{where}: cannot build SGP4 elements ({err})") from None
    return ElementSet(str(fields["OBJECT_NAME"]).strip(), line1, line2,
                      fields["NORAD_CAT_ID"], where, omm_fields=tuple(sorted(fields.items())))


def _check_ranges(fields: dict[str, Any], where: str) -> None:
    if not 0.0 <= fields["ECCENTRICITY"] < 1.0:
        raise InputError(f"{where}: ECCENTRICITY {fields['ECCENTRICITY']} is outside [0, 1)")
    if not 0.0 <= fields["INCLINATION"] <= 180.0:
        raise InputError(f"{where}: INCLINATION {fields['INCLINATION']} is outside 0..180")
    if fields["MEAN_MOTION"] <= 0.0:
        raise InputError(f"{where}: MEAN_MOTION must be positive")
    for key in ("RA_OF_ASC_NODE", "ARG_OF_PERICENTER", "MEAN_ANOMALY"):
        if not 0.0 <= fields[key] <= 360.0:
            raise InputError(f"{where}: {key} {fields[key]} is outside 0..360")


def _normalise_epoch(fields: dict[str, Any], where: str) -> str:
    """CelesTrak writes '2024-07-16T05:11:52.123456'; Space-Track '2024-07-16 05:11:52'
    plus EPOCH_MICROSECONDS. SGP4's OMM reader wants the former."""
    text = str(fields["EPOCH"]).strip().replace(" ", "T").removesuffix("Z")
    try:
        epoch = datetime.fromisoformat(text)
    except ValueError:
        raise InputError(f"{where}: EPOCH {fields['EPOCH']!r} is not an ISO date-time") from None
    if epoch.tzinfo is not None:
        epoch = epoch.astimezone(timezone.utc).replace(tzinfo=None)
    if fields.get("EPOCH_MICROSECONDS") not in (None, "") and epoch.microsecond == 0:
        epoch = epoch.replace(microsecond=int(fields["EPOCH_MICROSECONDS"]))
    return epoch.strftime("%Y-%m-%dT%H:%M:%S.%f")

