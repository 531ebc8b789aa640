"""docs/scenario-reference.md is what the schema's descriptions generate, and every option
of the schema has a description (with its unit where it has one)."""

from pathlib import Path

import pytest

from orbitfl.scenario import Scenario
from orbitfl.scenario.reference import REGENERATE, markdown, options

ROOT = Path(__file__).resolve().parents[1]
# A name ending so has a unit, and the description must state it.
UNIT_SUFFIXES = ("_km", "_deg", "_s", "_m", "_ms", "_w", "_wh", "_db", "_dbw", "_dbk",
                 "_mhz", "_ghz", "_mbps", "_bytes", "_day")


def test_every_option_has_a_one_line_description():
    missing = [o.path for o in options(Scenario) if not o.description]
    assert not missing, f"options without a description: {missing}"
    multi = [o.path for o in options(Scenario) if "\n" in o.description]
    assert not multi, multi


def test_every_option_with_a_unit_in_its_name_states_it():
    missing = [o.path for o in options(Scenario)
               if (o.path.endswith(UNIT_SUFFIXES) or o.is_duration) and not o.unit]
    assert not missing, f"options without a unit: {missing}"


@pytest.mark.parametrize(("path", "unit"), [("onboard.power.battery_wh", "Wh"),
                                            ("links.downlink.gt_dbk", "dB/K"),
                                            ("duration", "s")])
def test_units_are_parsed_from_the_description(path, unit):
    option = next(o for o in options(Scenario) if o.path == path)
    assert option.unit == unit and "[" not in option.description


def test_the_reference_lists_every_yaml_path_once():
    paths = [o.path for o in options(Scenario)]
    assert len(paths) == len(set(paths))
    assert {"fl.schedule.deadline", "ground_stations.sites[].lat_deg",
            "faults.station_outages[].start", "fl.safe.ace_dim"} <= set(paths)


def test_the_documentation_is_generated_from_the_schema():
    doc = ROOT / "docs" / "scenario-reference.md"
    assert doc.is_file() and doc.read_text(encoding="utf-8") == markdown(), \
        f"docs/scenario-reference.md is out of date: run {REGENERATE}"
