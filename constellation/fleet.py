"""Loading element sets from a file, whatever its format."""

from __future__ import annotations

from pathlib import Path

from orbitfl.errors import read_user_file

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
