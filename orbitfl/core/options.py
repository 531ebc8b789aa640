"""How a layer declares the options of its configuration once, for itself and the scenario.

Each layer owns frozen dataclasses for its part of a scenario (``fl`` its strategies and
data, ``constellation`` its power, faults and links). The scenario schema
(``orbitfl/scenario/model.py``) composes them directly, and pydantic validates a standard
dataclass as it validates its own models: it reads a field's bounds and description from
the ``dataclasses.field`` metadata that ``option`` writes, the strictness from
``__pydantic_config__ = STRICT``, and a ``ValueError`` from ``__post_init__`` becomes an
error at that section's YAML path. So the physics and learning layers never import
pydantic, and there is one declaration of every option, with its description and unit
(in brackets at the end: ``battery capacity [Wh]``, which docs/scenario-reference.md
shows in its own column).

Imports nothing of ours but the kernel, so every layer may use it.
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Annotated, Any

from orbitfl.core.errors import short
from orbitfl.core.limits import MAX_DURATION_S

STRICT = {"extra": "forbid", "allow_inf_nan": False}
"""``__pydantic_config__`` of every config dataclass: an unknown key is an error, and no
float may be inf or nan (they pass bounds and then crash or hang a run)."""

_BOUNDS = ("gt", "ge", "lt", "le", "min_length")


def option(default: Any = dataclasses.MISSING, description: str = "", *,
           default_factory: Any = dataclasses.MISSING, **bounds: float) -> Any:
    """A dataclass field with its one-line description (unit in brackets at the end) and
    bounds (``gt``, ``ge``, ``lt``, ``le``) checked when a scenario is validated."""
    unknown = set(bounds) - set(_BOUNDS)
    if unknown:
        raise TypeError(f"unknown bound(s) {sorted(unknown)}; use {_BOUNDS}")
    return dataclasses.field(default=default, default_factory=default_factory,
                             metadata={"description": description, **bounds})


_DURATION_UNITS = {"s": 1.0, "sec": 1.0, "min": 60.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
DURATION_RE = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*(sec|s|min|m|h|d)\s*")  # longest unit first


def parse_duration(value: Any) -> float:
    """Seconds from a number (seconds) or a string like '90s', '10min', '6h', '3d', '1h30min';
    finite, positive and at most a year (``MAX_DURATION_S``)."""
    if isinstance(value, bool):
        raise ValueError("expected a duration like '6h' or '90s'")
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str) and len(value) <= 100:
        parts = DURATION_RE.findall(value)
        if not parts or "".join(f"{n}{u}" for n, u in parts) != re.sub(r"\s+", "", value):
            raise ValueError(f"expected a duration like '6h', '10min' or '90s', "
                             f"got {short(value)}")
        seconds = sum(float(n) * _DURATION_UNITS[u] for n, u in parts)
    else:
        raise ValueError(f"expected a duration like '6h' or '90s', got {short(value)}")
    if not math.isfinite(seconds):
        raise ValueError(f"a duration must be finite, got {short(value)}")
    if not seconds > 0:
        raise ValueError(f"a duration must be positive, got {short(value)}")
    if seconds > MAX_DURATION_S:
        raise ValueError(f"a duration must be at most {format_duration(MAX_DURATION_S)} "
                         f"({MAX_DURATION_S:.0f} s), got {short(value)}")
    return seconds


def format_duration(seconds: float) -> str:
    """'3d', '6h', '90min' or '45s': the largest unit that divides ``seconds`` evenly."""
    for unit, size in (("d", 86400.0), ("h", 3600.0), ("min", 60.0)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


class _DurationMarker:
    """Annotated metadata: the scenario reads this float with ``parse_duration`` first
    (pydantic calls this hook while building the schema, so no import here)."""

    def __get_pydantic_core_schema__(self, source: Any, handler: Any) -> Any:
        from pydantic_core import core_schema

        return core_schema.no_info_before_validator_function(parse_duration, handler(source))

    def __repr__(self) -> str:
        return "DURATION"


DURATION = _DurationMarker()
Duration = Annotated[float, DURATION]
"""Seconds, written in a scenario as a number or a string such as '6h'."""


class _ScenarioFolder:
    """Annotated metadata: a folder named in a scenario, resolved against the scenario
    file's folder (the loader passes it as the validation context's ``base_dir``) and
    required to exist, so a scenario runs the same from any working directory."""

    def __get_pydantic_core_schema__(self, source: Any, handler: Any) -> Any:
        from pydantic_core import core_schema

        return core_schema.with_info_after_validator_function(self._resolve, handler(source))

    @staticmethod
    def _resolve(value: Any, info: Any) -> Any:
        from pathlib import Path

        if value is None:
            return None
        path = ((info.context or {}).get("base_dir", Path(".")) / value).resolve()
        if not path.is_dir():
            raise ValueError(f"folder not found: {path}")
        return path

    def __repr__(self) -> str:
        return "SCENARIO_FOLDER"


SCENARIO_FOLDER = _ScenarioFolder()
"""``Annotated[Path | None, SCENARIO_FOLDER]``: a folder relative to the scenario file."""
