"""A study's record (``study.json``): what the driver writes beside its sweeps and the export
ships with the tables, read back by the driver, the carry, the export and the report, never
trusted: a damaged one is one line."""

from __future__ import annotations

from pathlib import Path

from orbitfl.core.errors import InputError
from orbitfl.core.user_json import read_json_file

# The study record's sections and the JSON type each must have (read back, never trusted).
RECORD_SECTIONS: dict[str, type | tuple[type, ...]] = {
    "data": dict, "elapsed_s": (int, float), "methods": dict, "overrides": list, "power": dict,
    "protocol": dict, "run_wall_s": dict, "settings_from": dict, "tuning": dict,
    "carried_from": dict}


def load_record(out: Path) -> dict:
    """``study.json`` in ``out`` ({} when there is none), or a one-line ``InputError`` when it
    is not a study record: not a mapping, or a section of the wrong kind."""
    path = Path(out) / "study.json"
    if not path.is_file():
        return {}
    record = read_json_file(path, "study record")
    wrong = ("not a mapping" if not isinstance(record, dict) else next(
        (f"'{key}' is not a {getattr(kind, '__name__', 'number')}"
         for key, kind in RECORD_SECTIONS.items()
         if key in record and (not isinstance(record[key], kind)
                               or isinstance(record[key], bool))), None))
    if wrong:
        raise InputError(f"{path}: not a study record ({wrong}); delete it to start the "
                         "study afresh")
    return record
