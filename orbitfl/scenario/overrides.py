"""``--set PATH=VALUE``: command-line changes to a scenario's YAML mapping, applied before
validation so that the changed scenario is checked exactly like a file would be."""

from __future__ import annotations

import copy
import difflib
from pathlib import Path
from typing import Any, Sequence

from orbitfl.core.errors import InputError, short
from orbitfl.scenario.schema_fields import annotation_options, section_fields, section_model
from orbitfl.scenario.strict_yaml import load_yaml

Override = tuple[str, Any]


def parse_override(text: str) -> Override:
    """``fl.rounds=1`` -> ('fl.rounds', 1): the value is read as YAML (``6h`` stays a string,
    ``[polar, ksat]`` is a list, an empty value is null)."""
    dotted, sep, raw = text.partition("=")
    dotted = dotted.strip()
    if not sep or not dotted or any(not part for part in dotted.split(".")):
        raise InputError(f"--set {short(text)}: expected PATH=VALUE with a dotted YAML path, "
                         "such as fl.rounds=1")
    return dotted, load_yaml(raw, Path(f"--set {dotted}"))


def apply_overrides(document: dict, overrides: Sequence[Override], path: Path,
                    schema: type) -> dict:
    """A copy of ``document`` (the scenario file at ``path``, described by the model
    ``schema``) with every override set; intermediate sections are created. An unknown key is
    a one-line error naming it. A relative file path given on the command line is relative
    to the current folder."""
    document = copy.deepcopy(document)
    for dotted, value in overrides:
        node: Any = document
        model: type | None = schema
        parts = dotted.split(".")
        for depth, part in enumerate(parts):
            where = ".".join(parts[:depth]) or "top level"
            last = depth == len(parts) - 1
            if isinstance(node, list):
                if not (part.isascii() and part.isdigit()) or int(part) >= len(node):
                    raise InputError(f"{path}: --set {dotted}: {where} has {len(node)} items; "
                                     f"no item {short(part)}")
                key: Any = int(part)
            else:
                key = part
                known = list(section_fields(model)) if model is not None else []
                if part not in known:
                    close = difflib.get_close_matches(part, known, n=1)
                    hint = f" (did you mean {close[0]!r}?)" if close else ""
                    raise InputError(f"{path}: --set {dotted}: unknown key {short(part)} in "
                                     f"{where}{hint}; allowed: {', '.join(known) or 'none'}")
                annotation = section_fields(model)[part].annotation
                if last and Path in annotation_options(annotation) and isinstance(value, str):
                    value = str(Path(value).resolve())
                model = section_model(annotation)
            if last:
                node[key] = value
                break
            if isinstance(node, dict) and node.get(key) is None:
                node[key] = {}
            node = node[key]
            if not isinstance(node, (dict, list)):
                raise InputError(f"{path}: --set {dotted}: {'.'.join(parts[:depth + 1])} is "
                                 f"{short(node)}, not a section")
    return document
