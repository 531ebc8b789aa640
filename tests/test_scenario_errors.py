"""Bad scenarios end with exit code 2 and ONE line naming the file, the YAML path and the
problem; never a traceback."""

import copy
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from orbitfl.scenario import parse_duration

from conftest import SCENARIOS, TLE_DIR


def base_document() -> dict:
    document = yaml.safe_load((SCENARIOS / "quickstart.yaml").read_text())
    document["constellation"]["tle"] = str(TLE_DIR / "planet_2024-07-16.tle")
    return document


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "orbitfl.cli", *args],
                          capture_output=True, text=True, timeout=120)


def _set(document: dict, dotted: str, value) -> None:
    *parents, last = dotted.split(".")
    node = document
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    if value is DELETE:
        del node[last]
    elif isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value


DELETE = object()

CASES = [
    ("seeed", 3, "top level: unknown key 'seeed' (did you mean 'seed'?)"),
    ("fl.schedule.quorum", 3, "fl.schedule: unknown key 'quorum'"),
    ("fl.rounds", "ten", "fl.rounds: input should be a valid integer"),
    ("fl.rounds", DELETE, "fl.rounds: missing required key"),
    ("fl.rounds", 0, "fl.rounds: input should be greater than 0"),
    ("constellation.tle", "no/such.tle", "constellation.tle: file not found"),
    ("duration", "-3h", "duration: expected a duration like"),
    ("fl.schedule.deadline", "soon", "fl.schedule.deadline: expected a duration"),
    ("ground_stations.min_elevation_deg", 95, "ground_stations.min_elevation_deg: input should "
                                              "be less than 90"),
    ("ground_stations.sites.1", "atlantis", "ground_stations.sites.1: unknown ground station "
                                            "'atlantis'"),
    ("data.imbalance_ratio", 0.5, "data.imbalance_ratio: input should be greater than or equal"),
    ("links.downlink.rate_mbps", -1, "links.downlink.rate_mbps: input should be greater than 0"),
    ("constellation.select.name", "NOPE*", "constellation.select: matches no satellite"),
    ("fl.schedule.min_clients", 50, "fl.schedule.min_clients: 50 exceeds the 8 selected"),
    ("epoch", "yesterday", "epoch: input should be a valid datetime"),
    ("constellation.walker", {"preset": "starlink-shell1"},
     "constellation: give exactly one of 'tle' (an element file) and 'walker'"),
    ("ground_stations.network", "mars", "ground_stations.network: unknown network 'mars'"),
    ("ground_stations.sites", [], "ground_stations: give a network or at least one site"),
]


@pytest.mark.parametrize("path, value, message", CASES, ids=[c[0] for c in CASES])
def test_bad_scenario_gives_one_line_and_exit_2(tmp_path: Path, path, value, message):
    document = copy.deepcopy(base_document())
    _set(document, path, value)
    scenario = tmp_path / "bad.yaml"
    scenario.write_text(yaml.safe_dump(document))
    result = run_cli("validate", str(scenario))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: {scenario}: ")
    assert message in lines[0]
    assert "Traceback" not in result.stderr


def test_yaml_syntax_error_names_line_and_column(tmp_path: Path):
    scenario = tmp_path / "broken.yaml"
    scenario.write_text("name: x\nseed: [1, 2\nepoch: 2024-07-16\n")
    result = run_cli("validate", str(scenario))
    assert result.returncode == 2
    assert result.stderr.startswith(f"error: {scenario}:")
    assert "YAML syntax error" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_corrupt_tle_names_the_tle_file_and_line(tmp_path: Path):
    lines = (TLE_DIR / "planet_2024-07-16.tle").read_text().splitlines()
    lines[4] = lines[4][:30] + ("1" if lines[4][30] != "1" else "2") + lines[4][31:]
    tle = tmp_path / "corrupt.tle"
    tle.write_text("\n".join(lines) + "\n")
    document = base_document()
    document["constellation"]["tle"] = str(tle)
    scenario = tmp_path / "s.yaml"
    scenario.write_text(yaml.safe_dump(document))
    result = run_cli("run", str(scenario), "--out", str(tmp_path / "run"))
    assert result.returncode == 2
    lines_out = result.stderr.strip().splitlines()
    assert len(lines_out) == 1
    assert lines_out[0].startswith(f"error: {tle}:5: line 1 checksum is {lines[4][68]}, computed")
    assert not (tmp_path / "run").exists()


def test_missing_scenario_file():
    result = run_cli("validate", "does-not-exist.yaml")
    assert result.returncode == 2
    assert result.stderr.strip() == "error: does-not-exist.yaml: scenario file not found"


def test_walker_scenario_with_a_network_validates(tmp_path: Path):
    document = base_document()
    document["constellation"] = {"walker": {"preset": "iridium-next", "phasing": 2},
                                 "select": {"limit": 12}}
    document["ground_stations"] = {"network": "polar", "sites": [{"id": "svalsat",
                                                                  "antennas": 2}]}
    scenario = tmp_path / "walker.yaml"
    scenario.write_text(yaml.safe_dump(document))
    result = run_cli("validate", str(scenario))
    assert result.returncode == 0, result.stderr
    assert "ok (12 satellites, 5 stations)" in result.stdout


def test_shipped_quickstart_validates():
    result = run_cli("validate", str(SCENARIOS / "quickstart.yaml"))
    assert result.returncode == 0, result.stderr
    assert "ok (8 satellites, 4 stations)" in result.stdout


@pytest.mark.parametrize("text, seconds", [("90s", 90), ("10min", 600), ("6h", 21600),
                                           ("2d", 172800), ("1h30min", 5400), (45, 45),
                                           ("0.5h", 1800)])
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "6 hours", "h", "-1h", 0, True, "1h 30x"])
def test_bad_durations(text):
    with pytest.raises(ValueError):
        parse_duration(text)
