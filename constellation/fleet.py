"""Loading element sets from a file, whatever its format."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Sequence

from orbitfl.core.errors import InputError, read_user_file

from .omm import parse_omm_csv, parse_omm_json
from .tle import ElementSet, parse_tle_text


def load_element_file(path: str | Path,
                      skipped: list[str] | None = None) -> list[ElementSet]:
    """Element sets from a file: TLE/3LE text, or OMM as ``.json`` or ``.csv``."""
    path = Path(path)
    text = read_user_file(path, "element file")
    suffix = path.suffix.lower()
    if suffix == ".json":
        return parse_omm_json(text, str(path), skipped)
    if suffix == ".csv":
        return parse_omm_csv(text, str(path), skipped)
    return parse_tle_text(text, str(path), skipped)


def deduplicate(records: Sequence[ElementSet],
                epoch: datetime) -> tuple[list[ElementSet], list[tuple[ElementSet, ElementSet]]]:
    """One record per catalog number, the one whose epoch is nearest ``epoch`` (the first
    on a tie), in file order; also the (kept, dropped) pairs, for a warning.

    Two records of one satellite would otherwise share one index, one radio and one model.
    """
    best: dict[int, ElementSet] = {}
    for record in records:
        kept = best.get(record.catalog_number)
        if kept is None or _age(record, epoch) < _age(kept, epoch):
            best[record.catalog_number] = record
    kept_ids = {id(r) for r in best.values()}
    dropped = [(best[r.catalog_number], r) for r in records if id(r) not in kept_ids]
    return [r for r in records if id(r) in kept_ids], dropped


def check_unique_names(records: Sequence[ElementSet]) -> None:
    """Satellites are addressed by name (faults, logs, tables): two may not share one."""
    seen: dict[str, ElementSet] = {}
    for record in records:
        other = seen.setdefault(record.name, record)
        if other is not record:
            raise InputError(f"{other.origin} and {record.origin}: two satellites (NORAD "
                             f"{other.catalog_number} and {record.catalog_number}) share the "
                             f"name {record.name!r}")


def _age(record: ElementSet, epoch: datetime) -> float:
    return abs((record.epoch - epoch).total_seconds())
