"""Orbit Mean-Elements Messages (CCSDS OMM) as CelesTrak and Space-Track publish them, in
JSON and CSV. Each record becomes an ``ElementSet``: SGP4 is initialised from the OMM's
full-precision fields, and the equivalent TLE lines (from ``sgp4.exporter``) serve for
display, hashing and the helpers that read TLE columns.
"""

from __future__ import annotations

import csv
import io
import math
from datetime import datetime, timezone
from functools import partial
from typing import Any, Callable, Iterable, Iterator

from sgp4 import omm
from sgp4.api import Satrec
from sgp4.exporter import export_tle

from orbitfl.core.errors import InputError, short
from orbitfl.core.user_json import load_json

from .tle import ElementSet, check_sgp4

REQUIRED = ("OBJECT_NAME", "EPOCH", "MEAN_MOTION", "ECCENTRICITY", "INCLINATION",
            "RA_OF_ASC_NODE", "ARG_OF_PERICENTER", "MEAN_ANOMALY", "NORAD_CAT_ID", "BSTAR",
            "MEAN_MOTION_DOT", "MEAN_MOTION_DDOT")
# Catalogue metadata SGP4 does not use: a record may leave it out.
_DEFAULTS = {"CLASSIFICATION_TYPE": "U", "OBJECT_ID": "", "EPHEMERIS_TYPE": 0,
             "ELEMENT_SET_NO": 999, "REV_AT_EPOCH": 0}
_INTEGER = ("NORAD_CAT_ID", "EPHEMERIS_TYPE", "ELEMENT_SET_NO", "REV_AT_EPOCH")
_NUMERIC = ("MEAN_MOTION", "ECCENTRICITY", "INCLINATION", "RA_OF_ASC_NODE",
            "ARG_OF_PERICENTER", "MEAN_ANOMALY", "BSTAR", "MEAN_MOTION_DOT", "MEAN_MOTION_DDOT")


def parse_omm_json(text: str, source: str,
                   skipped: list[str] | None = None) -> list[ElementSet]:
    document = load_json(text, source)  # bounded depth; any parser error is one line
    records = document if isinstance(document, list) else [document]
    if not all(isinstance(r, dict) for r in records):
        raise InputError(f"{source}: expected a JSON object or a list of OMM objects")
    return _collect((partial(_element_set, r, f"{source}: record {i + 1}")
                     for i, r in enumerate(records)), source, skipped)


def parse_omm_csv(text: str, source: str,
                  skipped: list[str] | None = None) -> list[ElementSet]:
    reader = csv.reader(io.StringIO(text))

    def records() -> Iterator[Callable[[], ElementSet]]:
        try:  # the reader's own errors (a field past csv's size limit) end the file
            header = [name.strip() for name in next(reader, [])]
            for row in reader:
                if any(cell.strip() for cell in row):  # blank lines carry no record
                    yield partial(_csv_record, header, row, f"{source}:{reader.line_num}")
        except csv.Error as err:
            raise InputError(f"{source}:{reader.line_num}: cannot read as CSV ({err})") \
                from None

    return _collect(records(), source, skipped)


def _csv_record(header: list[str], row: list[str], where: str) -> ElementSet:
    """A row must have every column of the header: a short row is a truncated file, whose
    last surviving number may itself be cut."""
    if len(row) < len(header):
        raise InputError(f"{where}: row has {len(row)} of the header's {len(header)} fields "
                         "(truncated?)")
    if len(row) > len(header):
        raise InputError(f"{where}: row has {len(row)} fields, the header {len(header)}")
    return _element_set(dict(zip(header, row)), where)


def _collect(records: Iterable[Callable[[], ElementSet]], source: str,
             skipped: list[str] | None) -> list[ElementSet]:
    """Parse every record; with a ``skipped`` list, bad records are reported, not raised."""
    out = []
    for record in records:
        try:
            out.append(record())
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
            raise InputError(f"{where}: {key} {short(fields[key])} is not a number") from None
        if not math.isfinite(value):
            raise InputError(f"{where}: {key} is not finite")
        fields[key] = value
    for key in _INTEGER:
        fields[key] = _integer(fields[key], key, where)
    _check_ranges(fields, where)
    fields["EPOCH"] = _normalise_epoch(fields, where)
    sat = Satrec()
    try:
        omm.initialize(sat, fields)
        line1, line2 = export_tle(sat)
    except (ValueError, KeyError) as err:
        raise InputError(f"{where}: cannot build SGP4 elements ({err})") from None
    check_sgp4(sat, where)
    return ElementSet(str(fields["OBJECT_NAME"]).strip(), line1, line2,
                      fields["NORAD_CAT_ID"], where, omm_fields=tuple(sorted(fields.items())))


def _integer(value: Any, key: str, where: str) -> int:
    """An integer field, as a JSON number or text; '12.5' or 'x' is an error, not 12."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    try:
        return int(str(value).strip())
    except ValueError:
        raise InputError(f"{where}: {key} {short(value)} is not an integer") from None


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
        raise InputError(f"{where}: EPOCH {short(fields['EPOCH'])} is not an ISO "
                         "date-time") from None
    if epoch.tzinfo is not None:
        epoch = epoch.astimezone(timezone.utc).replace(tzinfo=None)
    if fields.get("EPOCH_MICROSECONDS") not in (None, "") and epoch.microsecond == 0:
        epoch = epoch.replace(microsecond=int(fields["EPOCH_MICROSECONDS"]))
    return epoch.strftime("%Y-%m-%dT%H:%M:%S.%f")

