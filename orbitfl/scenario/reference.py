"""The scenario reference: every YAML path of a scenario file with its type, default,
allowed values or bounds, unit and description, generated from the schema
(``orbitfl/scenario/model.py``) so that the two cannot drift apart::

    python -m orbitfl.scenario.reference --write docs/scenario-reference.md

A field's unit is written at the end of its description in brackets (``battery capacity
[Wh]``); the reference shows it in its own column.
"""

from __future__ import annotations

import re
import sys
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from annotated_types import Ge, Gt, Le, Lt, MinLen
from pydantic.fields import FieldInfo

from orbitfl.core.docgen import generator_main, table_cell
from orbitfl.core.limits import MAX_DURATION_S
from orbitfl.core.options import DURATION
from orbitfl.scenario.model import Scenario
from orbitfl.scenario.schema_fields import (
    annotation_options,
    is_list,
    is_section,
    section_fields,
    section_model,
)

DOC = Path("docs/scenario-reference.md")
REGENERATE = f"python -m orbitfl.scenario.reference --write {DOC}"
_UNIT = re.compile(r"\s*\[([^\]]+)\]$")
_BOUNDS = ((Gt, "gt", ">"), (Ge, "ge", ">="), (Lt, "lt", "<"), (Le, "le", "<="))


@dataclass(frozen=True)
class Option:
    """One YAML path of a scenario (a section or a value)."""

    path: str
    type: str
    default: str
    allowed: str
    unit: str
    description: str
    is_duration: bool


def split_unit(description: str) -> tuple[str, str]:
    """('battery capacity', 'Wh') from 'battery capacity [Wh]'; no brackets, no unit."""
    match = _UNIT.search(description)
    if match is None:
        return description, ""
    return description[:match.start()], match.group(1)


def options(model: type = Scenario, prefix: str = "") -> list[Option]:
    """Every field of ``model`` and of its sections, depth first, in declaration order;
    a list's items are written ``path[].key``."""
    found: list[Option] = []
    for name, field in section_fields(model).items():
        path = prefix + name
        found.append(_option(path, field))
        section = section_model(field.annotation)
        if section is not None:
            many = any(is_list(o) for o in annotation_options(field.annotation))
            found += options(section, path + ("[]." if many else "."))
    return found


def _option(path: str, field: FieldInfo) -> Option:
    duration = any(m is DURATION for m in field.metadata)
    description, unit = split_unit(field.description or "")
    allowed = f"> 0, <= {MAX_DURATION_S:g}" if duration else _allowed(field)
    return Option(path, "duration" if duration else _type_name(field.annotation),
                  _default(field), allowed, "s" if duration and not unit else unit,
                  description, duration)


def _type_name(annotation: Any) -> str:
    """'int', 'float or null', 'list of Site', 'one of ...' in words a YAML author reads."""
    if typing.get_origin(annotation) is Literal:
        return "choice"
    if is_list(annotation):
        return "list of " + _type_name(typing.get_args(annotation)[0])
    if typing.get_origin(annotation) is dict:
        return "mapping"
    options_ = annotation_options(annotation)
    if len(options_) > 1:
        return " or ".join(_type_name(o) for o in options_)
    if annotation is type(None):
        return "null"
    if is_section(annotation):
        return "section"
    return {Path: "path", str: "string", bool: "bool"}.get(annotation,
                                                           getattr(annotation, "__name__",
                                                                   str(annotation)))


def _default(field: FieldInfo) -> str:
    if field.is_required():
        return "required"
    value = field.default
    if field.default_factory is dict:
        return "`{}`"
    if field.default_factory is not None or value == ():
        return "`[]`"
    if is_section(type(value)):
        return "(section defaults)"
    if value is None:
        return "none"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    return f"`{_number(value)}`"


def _allowed(field: FieldInfo) -> str:
    """The Literal's values, or the numeric bounds (``> 0, <= 1``)."""
    annotation = field.annotation
    for option in (annotation, *annotation_options(annotation)):
        if typing.get_origin(option) is Literal:
            return ", ".join(f"`{v}`" for v in typing.get_args(option))
    parts = []
    for meta in field.metadata:
        for kind, attr, sign in _BOUNDS:
            if isinstance(meta, kind):
                parts.append(f"{sign} {_number(getattr(meta, attr))}")
        if isinstance(meta, MinLen):
            parts.append(f"at least {meta.min_length} character(s)")
    return ", ".join(parts)


def _number(value: Any) -> str:
    """A float in short form; an int (a seed's bound keeps all its digits) or a string as is."""
    return f"{value:g}" if isinstance(value, float) else str(value)


def markdown() -> str:
    """``docs/scenario-reference.md``: one table row per YAML path."""
    lines = [
        "# Scenario reference",
        "",
        f"Generated from `orbitfl/scenario/model.py` by `{REGENERATE}`; do not edit by hand (a "
        "test fails when this file and the schema differ). "
        "[README](../README.md#scenario-files) explains how a scenario is written; "
        "`orbitfl schema` exports the same schema as JSON Schema for editors.",
        "",
        "`a[].b` is key `b` of every item of the list `a`. A `duration` is seconds or a "
        "string such as `90s`, `10min`, `6h`, `2d`, `1h30min`. Names of stations, networks, "
        "link presets, chips and Walker presets are listed by `orbitfl list`. Checks that "
        "join several keys (exactly one link kind, a quorum) are made by `orbitfl validate`.",
        "",
        "| YAML path | type | default | allowed | unit | description |",
        "|---|---|---|---|---|---|",
    ]
    lines += [f"| `{o.path}` | {o.type} | {table_cell(o.default)} | {table_cell(o.allowed)} | "
              f"{table_cell(o.unit)} | {table_cell(o.description)} |" for o in options(Scenario)]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    return generator_main("python -m orbitfl.scenario.reference",
                          "Write the scenario reference (Markdown).", markdown, argv)


if __name__ == "__main__":
    sys.exit(main())
