"""Walking the scenario schema: the sections a field holds and the fields of a section, for
pydantic models and a layer's config dataclasses alike. Shared by validation messages,
``--set`` overrides, the reference and the catalogs, none of which needs the schema itself
to do it (so none imports the scenario module for it)."""

from __future__ import annotations

import dataclasses
import functools
import typing
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo


def annotation_options(annotation: Any) -> tuple:
    """The members of ``X | Y | None`` (or ``(X,)``)."""
    args = typing.get_args(annotation)
    return args if args and not is_list(annotation) else (annotation,)


def is_list(annotation: Any) -> bool:
    """A list in YAML: ``list[X]``, or ``tuple[X, ...]`` in a layer's frozen config."""
    return typing.get_origin(annotation) in (list, tuple)


def is_section(value: Any) -> bool:
    """A section of the schema: one of its models, or a layer's config dataclass."""
    return isinstance(value, type) and (issubclass(value, BaseModel)
                                        or dataclasses.is_dataclass(value))


def section_model(annotation: Any) -> type | None:
    """The section a field holds: its model or dataclass, or its list items' (None for a
    value)."""
    for option in annotation_options(annotation):
        if is_list(option):
            option = typing.get_args(option)[0]
        if is_section(option):
            return option
    return None


@functools.cache
def section_fields(section: type) -> dict[str, FieldInfo]:
    """The fields of a section as pydantic reads them (bounds, description, default), for a
    model and for a layer's config dataclass alike (``orbitfl/core/options.py``)."""
    if issubclass(section, BaseModel):  # by the names a YAML file writes (aliases)
        return {field.alias or name: field for name, field in section.model_fields.items()}
    hints = typing.get_type_hints(section, include_extras=True)
    return {f.name: FieldInfo.from_annotated_attribute(hints[f.name], f)
            for f in dataclasses.fields(section)}
