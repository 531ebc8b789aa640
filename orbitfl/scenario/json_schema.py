"""``orbitfl schema``: a JSON Schema of scenario files for editors (YAML language servers).

Generated from the pydantic model, then told what the model's validators know: a duration is
seconds or a string such as ``6h``, a ground site is a catalog id or an inline mapping, and
preset, network and chip names come from the catalogs. It accepts every valid scenario; the
checks that need several fields or the data (a quorum, a TLE selection) stay with
``orbitfl validate``.
"""

from __future__ import annotations

from typing import Any

from pydantic.json_schema import GenerateJsonSchema
from pydantic_core import core_schema

from orbitfl.constellation.compute import CHIPS
from orbitfl.constellation.links import LINK_PRESETS
from orbitfl.constellation.stations import NETWORKS, catalog
from orbitfl.constellation.walker import PRESETS
from orbitfl.core.limits import MAX_DURATION_S
from orbitfl.core.options import DURATION_RE, parse_duration
from orbitfl.scenario.model import Scenario, Site

DRAFT = "https://json-schema.org/draft/2020-12/schema"
# parse_duration reads one or more number-unit parts, spaces allowed between them
DURATION_PATTERN = rf"^(?:{DURATION_RE.pattern})+$"


def _duration() -> dict:
    return {"anyOf": [{"type": "number", "exclusiveMinimum": 0, "maximum": MAX_DURATION_S},
                      {"type": "string", "pattern": DURATION_PATTERN}],
            "description": "seconds, or a string such as '90s', '10min', '6h', '2d', '1h30min'"}


class _ScenarioSchema(GenerateJsonSchema):
    """Pydantic's generator, with the schema of the scenario's own parsing functions."""

    def function_before_schema(self, schema: core_schema.BeforeValidatorFunctionSchema) -> dict:
        if schema["function"]["function"] is parse_duration:
            return _duration()
        return super().function_before_schema(schema)


def scenario_json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a scenario file."""
    schema = Scenario.model_json_schema(schema_generator=_ScenarioSchema)
    defs = schema["$defs"]
    stations = sorted(catalog())
    _site(defs, stations)
    _name_choice(defs["WalkerSpec"], "preset", list(PRESETS))
    _name_choice(defs["LinkSpec"], "preset", list(LINK_PRESETS))
    defs["OnboardConfig"]["properties"]["compute"]["enum"] = list(CHIPS)
    network = {"type": "string", "enum": list(NETWORKS)}
    defs["GroundStationsConfig"]["properties"]["network"] = {
        "anyOf": [network, {"type": "array", "items": network}],
        "description": "a network preset or a list of them (see 'orbitfl list networks')"}
    schema["$schema"] = DRAFT
    schema["title"] = "orbitfl scenario"
    return schema


def _site(defs: dict, stations: list[str]) -> None:
    """A site is a catalog id, or a mapping whose id is a catalog id unless it carries its
    own coordinates (lat_deg and lon_deg together)."""
    site_name = Site.__name__
    site = defs[site_name]
    site["dependentRequired"] = {"lat_deg": ["lon_deg"], "lon_deg": ["lat_deg"]}
    site["if"] = {"not": {"required": ["lat_deg"]}}
    site["then"] = {"properties": {"id": {"enum": stations}}}
    sites = defs["GroundStationsConfig"]["properties"]["sites"]
    sites["items"] = {"anyOf": [{"type": "string", "enum": stations},
                                {"$ref": f"#/$defs/{site_name}"}],
                      "description": "a catalog id (see 'orbitfl list stations') or a site"}


def _name_choice(model: dict, field: str, names: list[str]) -> None:
    """An optional name field (``str | None``) restricted to ``names``."""
    model["properties"][field]["anyOf"] = [{"type": "string", "enum": names},
                                           {"type": "null"}]
