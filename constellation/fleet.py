"""Loading element sets from a file, whatever its format."""

from __future__ import annotations

from pathlib import Path

from orbitfl.errors import InputError

from .omm import parse_omm_csv, parse_omm_json
from .tle import ElementSet, parse_tle_text


def load_element_file(path: str | Path,
                      skipped: list[str] | None = None) -> list[ElementSet]:
    """Element sets from a file: TLE/3LE text, or OMM as ``.json`` or ``.csv``."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{path}: element file not found") from None
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"{path}: cannot read element file ({err})") from None
    suffix = path.suffix.lower()
    if suffix == ".json":
        return parse_omm_json(text, str(path), skipped)
    if suffix == ".csv":
        return parse_omm_csv(text, str(path), skipped)
    return parse_tle_text(text, str(path), skipped)
