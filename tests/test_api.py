"""The Python API: scenarios from files and from mappings, overrides, contacts, runs."""

import copy
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from test_end_to_end import TINY

import orbitfl
from orbitfl.errors import InputError

from conftest import SCENARIOS

REPO = Path(__file__).resolve().parents[1]


def test_a_mapping_with_absolute_paths_runs_without_any_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)                     # nothing written by the user
    scenario = orbitfl.load_scenario(copy.deepcopy(TINY), overrides={"fl.rounds": 1})
    assert scenario.fl.rounds == 1
    plan = orbitfl.contacts(scenario)
    assert len(plan) > 0
    run = orbitfl.run(scenario, out=tmp_path / "run", progress=False)
    assert list(run.rounds["round"]) == [0, 1]
    assert run.manifest["scenario_file"] is None
    assert run.summary["rounds_completed"] == 1 and len(run.contacts) == len(plan)
    again = orbitfl.open_run(run.path)
    assert again.rounds.equals(run.rounds)


def test_with_overrides_keeps_paths_anchored_to_the_original_file(tmp_path, monkeypatch):
    scenario = orbitfl.load_scenario(SCENARIOS / "quickstart.yaml")
    monkeypatch.chdir(tmp_path)                     # relative paths must not follow cwd
    changed = scenario.with_overrides({"fl.rounds": 3, "fl.strategy": "fedavg"})
    assert changed.fl.rounds == 3 and changed.fl.strategy == "fedavg"
    assert changed.constellation.tle == scenario.constellation.tle
    assert changed.constellation.tle.is_file()
    assert scenario.fl.rounds != 3                  # the original is untouched


@pytest.mark.parametrize("name", sorted(p.name for p in SCENARIOS.glob("*.yaml")))
def test_every_shipped_scenario_survives_an_empty_override(name):
    scenario = orbitfl.load_scenario(SCENARIOS / name)
    assert scenario.with_overrides({}) == scenario


def test_bad_input_is_the_commands_one_line_error(tmp_path):
    with pytest.raises(InputError, match=r"<scenario>: fl.rounds"):
        orbitfl.load_scenario(copy.deepcopy(TINY), overrides={"fl.rounds": -1})
    with pytest.raises(InputError, match="not a complete run directory"):
        orbitfl.open_run(tmp_path)


def test_the_notebook_tour_runs(tmp_path):
    scenario = tmp_path / "tiny.yaml"
    scenario.write_text(yaml.safe_dump(TINY))
    result = subprocess.run([sys.executable, str(REPO / "examples" / "notebook_tour.py"),
                             str(scenario), "--set", "fl.rounds=1"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "contact windows" in result.stdout
    assert "fedavg " in result.stdout and "safe " in result.stdout
