"""The command's front doors (issue 13): --version, help on every argument, --set, list,
schema, and errors that teach (every schema error at once, one line each)."""

import argparse
import copy
import json
import shutil
import subprocess
import sys
from datetime import date, datetime
from pathlib import Path

import jsonschema
import pandas as pd
import pytest
import yaml

from orbitfl.cli import main
from orbitfl.constellation.stations import catalog

from conftest import SCENARIOS, TLE_DIR

TINY = {
    "name": "tiny-set",
    "seed": 5,
    "epoch": "2024-07-16T06:00:00Z",
    "duration": "12h",
    "constellation": {"tle": "elements.tle",  # relative to the scenario file
                      "select": {"name": "FLOCK 4X*", "limit": 2}},
    "ground_stations": {"sites": ["svalsat", "kiruna"], "min_elevation_deg": 10},
    "links": {"downlink": {"rate_mbps": 0.5}, "uplink": {"rate_mbps": 0.25}},
    "data": {"dataset": "synthetic", "classes": 2, "image_size": 16,
             "samples_per_class_max": 20, "test_per_class": 10, "ses_per_class": 2,
             "partition": "iid"},
    "fl": {"strategy": "fedavg", "rounds": 5, "schedule": {"deadline": "3h"}},
}


def cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    shutil.copy(TLE_DIR / "planet_2024-07-16.tle", tmp_path / "elements.tle")
    scenario = tmp_path / "tiny.yaml"
    scenario.write_text(yaml.safe_dump(TINY))
    return scenario


# --- version and help -------------------------------------------------------------------

def test_version(capsys):
    from orbitfl import __version__

    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0
    assert capsys.readouterr().out.strip() == f"orbitfl {__version__}"


def test_python_m_orbitfl_help_lists_every_command():
    result = subprocess.run([sys.executable, "-m", "orbitfl", "--help"], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    for command in ("validate", "run", "contacts", "report", "sweep", "list", "schema",
                    "init"):
        assert f"\n    {command} " in result.stdout, command


def test_every_argument_has_help(monkeypatch):
    """Every argument of every command says what it is for (argparse prints nothing for an
    argument without help)."""
    actions: list[argparse.Action] = []
    original = argparse._ActionsContainer.add_argument

    def recording(self, *args, **kwargs):
        action = original(self, *args, **kwargs)
        actions.append(action)
        return action

    monkeypatch.setattr(argparse._ActionsContainer, "add_argument", recording)
    with pytest.raises(SystemExit):
        main(["--help"])
    silent = [a.dest for a in actions if not a.help]
    assert len(actions) > 20 and not silent, silent


# --- list -------------------------------------------------------------------------------

def test_list_stations_prints_the_catalog_with_coordinates_and_source(capsys):
    code, out, _ = cli(capsys, "list", "stations")
    assert code == 0
    rows = {line.split()[0]: line for line in out.splitlines()[1:]}
    assert set(rows) == set(catalog())
    svalsat = catalog()["svalsat"]
    assert f"{svalsat.lat_deg:.4f}" in rows["svalsat"] and "Wikipedia" in rows["svalsat"]


def test_list_names_match_what_validation_and_fl_accept(capsys):
    from orbitfl.constellation.compute import CHIPS
    from orbitfl.constellation.links import LINK_PRESETS
    from orbitfl.constellation.stations import NETWORKS
    from orbitfl.constellation.walker import PRESETS
    from orbitfl.fl.compression import CODECS
    from orbitfl.fl.extensions import strategy_class
    from orbitfl.fl.models import MODELS
    from orbitfl.fl.registry import BUILT_INS, SHIPPED

    # each built-in strategy loads to a class of that name and scheduling mode; then the
    # classes orbitfl ships to be named by reference (the Flower adapter), as written
    strategies = {}
    for entry in BUILT_INS["strategy"].values():
        cls = strategy_class(entry)
        assert (cls.name, cls.asynchronous) == (entry.name, entry.asynchronous), entry.name
        strategies[cls.name] = cls
    for entry in SHIPPED["strategy"]:
        assert entry.name == entry.target and strategy_class(entry).Options is not None
        strategies[entry.name] = strategy_class(entry)
    expected = {"networks": NETWORKS, "links": LINK_PRESETS, "chips": CHIPS,
                "walker": PRESETS, "models": MODELS, "strategies": strategies,
                "codecs": CODECS}
    for name, names in expected.items():
        code, out, _ = cli(capsys, "list", name)
        lines = out.splitlines()[1:]
        assert code == 0 and [line.split()[0] for line in lines] == list(names), name
        assert all(len(line.split()) > 1 for line in lines), f"{name}: a row without meaning"
    code, out, _ = cli(capsys, "list", "datasets")
    assert "eurosat" in out and "geo-synthetic" in out


def test_list_links_gives_the_dove_x_peak_rate(capsys):
    """16APSK 9/10 at 75 MHz / 1.2 = 62.5 Msym/s: 3.5625 bit/symbol, 222.7 Mbit/s."""
    _, out, _ = cli(capsys, "list", "links")
    assert "223 Mbit/s peak" in out and "0.25 Mbit/s" in out


# --- schema -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def schema(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("schema") / "scenario.schema.json"
    assert main(["schema", "--out", str(out)]) == 0
    document = json.loads(out.read_text())
    jsonschema.Draft202012Validator.check_schema(document)
    return document


def as_json(document):
    """A YAML document as an editor's language server sees it: timestamps are strings."""
    if isinstance(document, dict):
        return {k: as_json(v) for k, v in document.items()}
    if isinstance(document, list):
        return [as_json(v) for v in document]
    if isinstance(document, (datetime, date)):
        return document.isoformat()
    return document


def schema_errors(schema: dict, document: dict) -> list[str]:
    validator = jsonschema.Draft202012Validator(schema)
    return [e.message for e in validator.iter_errors(as_json(document))]


@pytest.mark.parametrize("path", sorted(SCENARIOS.glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_scenario_validates_against_the_schema(schema, path):
    assert schema_errors(schema, yaml.safe_load(path.read_text())) == []


def quickstart() -> dict:
    document = yaml.safe_load((SCENARIOS / "quickstart.yaml").read_text())
    document["constellation"]["tle"] = str(TLE_DIR / "planet_2024-07-16.tle")
    return document


def changed(path: str, value) -> dict:
    document = quickstart()
    *parents, last = path.split(".")
    node = document
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value
    return document


VALID = [("duration", "1h30min"), ("duration", 3600), ("fl.schedule.deadline", " 90 min"),
         ("ground_stations.sites", ["svalsat", {"id": "kiruna", "antennas": 2},
                                    {"id": "home", "lat_deg": 48.1, "lon_deg": 11.6}]),
         ("ground_stations.network", "polar"), ("ground_stations.network", ["ksat", "canada"]),
         ("links.downlink", {"band": "X", "eirp_dbw": 6, "gt_dbk": 28, "bandwidth_mhz": 75}),
         ("onboard.compute", "myriad-x"), ("faults.reboot_duration", "10min")]
INVALID = [("seeed", 3), ("fl.strategy", "fedsgd"), ("fl.rounds", -1),
           ("data.test_per_class", -5), ("duration", "6 hours"), ("duration", "h"),
           ("fl.schedule.deadline", -3), ("ground_stations.sites", ["atlantis"]),
           ("ground_stations.sites", [{"id": "home", "lat_deg": 48.1}]),
           ("ground_stations.network", "mars"), ("links.uplink", {"preset": "laser"}),
           ("onboard.compute", "jetson-tx9"), ("constellation.walker", {"preset": "gps"}),
           ("links.downlink", 5)]


@pytest.mark.parametrize("path, value", VALID, ids=[f"{p}={v}" for p, v in VALID])
def test_schema_accepts_what_validation_accepts(schema, tmp_path, capsys, path, value):
    document = changed(path, value)
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(document))
    assert cli(capsys, "validate", str(tmp_path / "s.yaml"))[0] == 0
    assert schema_errors(schema, document) == []


@pytest.mark.parametrize("path, value", INVALID, ids=[f"{p}={v}" for p, v in INVALID])
def test_schema_rejects_what_validation_rejects(schema, tmp_path, capsys, path, value):
    document = changed(path, value)
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(document))
    assert cli(capsys, "validate", str(tmp_path / "s.yaml"))[0] == 2
    assert schema_errors(schema, document) != []


def test_a_scenario_without_fl_is_a_contact_plan_for_schema_and_validation(schema, tmp_path,
                                                                          capsys):
    document = quickstart()
    del document["fl"]
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(document))
    code, out, _ = cli(capsys, "validate", str(tmp_path / "s.yaml"))
    assert code == 0 and "it describes a contact plan only, for orbitfl contacts" in out
    assert schema_errors(schema, document) == []
    assert "fl" not in schema["required"]


def test_schema_to_standard_output(capsys):
    code, out, _ = cli(capsys, "schema")
    assert code == 0 and json.loads(out)["title"] == "orbitfl scenario"


# --- --set ------------------------------------------------------------------------------

def test_set_changes_the_scenario_before_validation_and_runs_one_round(tiny, tmp_path,
                                                                       capsys, monkeypatch):
    """Run from another folder: the scenario's relative element file still resolves against
    the scenario's folder."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    code, out, err = cli(capsys, "run", str(tiny), "--set", "fl.rounds=1", "--set",
                         "duration=6h", "--out", str(tmp_path / "run"))
    assert code == 0, err
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["scenario"]["fl"]["rounds"] == 1
    assert manifest["scenario"]["duration"] == 6 * 3600
    rounds = pd.read_parquet(tmp_path / "run" / "rounds.parquet")
    assert list(rounds["round"]) == [0, 1]


def test_set_values_are_yaml(tiny, capsys):
    from orbitfl.scenario import load_scenario

    scenario = load_scenario(tiny, [("ground_stations.network", ["ksat"]),
                                    ("ground_stations.sites.1", "inuvik"),
                                    ("network.backhaul.latency_ms", 10)])
    assert scenario.ground_stations.network == ["ksat"]
    assert [s.id for s in scenario.ground_stations.sites] == ["svalsat", "inuvik"]
    assert scenario.network.backhaul.latency_ms == 10
    code, out, err = cli(capsys, "validate", str(tiny), "--set",
                         "ground_stations.network=[polar, ksat]", "--set", "fl.rounds=2")
    assert code == 0, err and "ok (2 satellites, 6 stations)" in out


@pytest.mark.parametrize("setting, message", [
    ("fl.roundz=1", "--set fl.roundz: unknown key 'roundz' in fl (did you mean 'rounds'?)"),
    ("fl.rounds.x=1", "--set fl.rounds.x: fl.rounds is 5, not a section"),
    ("ground_stations.sites.7=kiruna", "ground_stations.sites has 2 items; no item '7'"),
    ("fl.rounds", "--set 'fl.rounds': expected PATH=VALUE"),
    ("fl.rounds=[1", "--set fl.rounds:1:3: YAML syntax error"),
    ("fl.rounds=0", "fl.rounds: input should be greater than 0"),
    ("ground_stations.sites.\u00b2=kiruna", "ground_stations.sites has 2 items; no item '\u00b2'"),
    ("name=a\x1bb", "--set name:1:2: YAML syntax error: character U+001B is not allowed"),
    ("name=\x00", "--set name:1:1: YAML syntax error: character U+0000 is not allowed"),
])
def test_bad_set_is_one_line_naming_it(tiny, capsys, setting, message):
    code, _, err = cli(capsys, "validate", str(tiny), "--set", setting)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and message in lines[0], err


def test_set_path_on_the_command_line_is_relative_to_the_current_folder(tiny, tmp_path,
                                                                        monkeypatch, capsys):
    (tmp_path / "other").mkdir()
    shutil.copy(TLE_DIR / "planet_2024-07-16.tle", tmp_path / "other" / "mine.tle")
    monkeypatch.chdir(tmp_path / "other")
    code, _, err = cli(capsys, "validate", str(tiny), "--set", "constellation.tle=mine.tle")
    assert code == 0, err


def test_sweep_set_overrides_the_base(tiny, tmp_path):
    from orbitfl.sweeps.runner import plan_points

    sweep = tmp_path / "sweep.yaml"
    sweep.write_text("base: tiny.yaml\nparameters:\n  seed: [1, 2]\n")
    points, _ = plan_points(sweep, tmp_path / "out", [("fl.rounds", 1)])
    for point in points:
        assert point.scenario.fl.rounds == 1 and point.error is None


# --- errors that teach ------------------------------------------------------------------

def test_every_schema_error_is_reported_one_line_each(tmp_path, capsys):
    document = quickstart()
    document["seeed"] = 1
    document["fl"]["rounds"] = "ten"
    document["links"]["downlink"] = 5
    document["ground_stations"]["sites"] = ["svalsat", "kirun"]
    document["constellation"]["select"]["name"] = 5
    scenario = tmp_path / "bad.yaml"
    scenario.write_text(yaml.safe_dump(document))
    code, _, err = cli(capsys, "validate", str(scenario))
    lines = err.strip().splitlines()
    assert code == 2
    assert all(line.startswith(f"error: {scenario}: ") for line in lines), err
    assert sorted(line.split(": ")[2] for line in lines) == [
        "constellation.select.name", "fl.rounds", "ground_stations.sites.1", "links.downlink",
        "top level"]
    text = "\n".join(lines)
    # the close matches from the catalog
    assert "unknown ground station 'kirun' (close matches: 'kiruna')" in text
    # pydantic's "valid dictionary or instance of LinkSpec", in the project's words
    assert "links.downlink: expected a link: rate_mbps, a preset (see 'orbitfl list links') " \
           "or a DVB-S2 budget" in text and "LinkSpec" not in text
    # a union's alternatives are one line
    assert "constellation.select.name: input should be a valid string or a valid list " \
           "(got 5)" in text


def test_a_file_wrong_everywhere_gives_a_bounded_list(tmp_path, capsys):
    document = quickstart()
    document.update({f"key{i}": i for i in range(50)})
    scenario = tmp_path / "bad.yaml"
    scenario.write_text(yaml.safe_dump(document))
    code, _, err = cli(capsys, "validate", str(scenario))
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 20 and lines[-1].endswith("... and 31 more errors")


def test_copy_of_tiny_is_untouched(tiny):
    """--set never writes the user's file."""
    before = tiny.read_text()
    main(["validate", str(tiny), "--set", "fl.rounds=1"])
    assert tiny.read_text() == before and copy.deepcopy(TINY)["fl"]["rounds"] == 5


def test_sec_unit_is_read_as_the_schema_says(schema):
    """'sec' is a listed unit, but the regex tried 's' first and then refused the 'ec'."""
    from orbitfl.core.options import parse_duration

    assert schema_errors(schema, changed("duration", "90sec")) == []
    assert parse_duration("90sec") == 90 and parse_duration("1min30sec") == 90


def test_a_reader_that_leaves_early_is_not_an_error():
    """`orbitfl list stations | head` ended with a BrokenPipeError traceback."""
    process = subprocess.Popen([sys.executable, "-m", "orbitfl", "list", "stations"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    process.stdout.close()
    stderr = process.stderr.read().decode()
    assert process.wait() == 0 and "Traceback" not in stderr and "Error" not in stderr
