"""The Python API: scenarios from files and from mappings, overrides, contacts, runs."""

import copy
import importlib
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from test_end_to_end import TINY

import orbitfl
from orbitfl.core.errors import InputError

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


def test_a_sweep_with_replicates_from_python(tmp_path):
    """2 groups x 2 replicates of test_sweep's micro scenario (2 satellites, 1 round):
    the per-run table, the per-group summary, reuse on a second call, the report, reprs."""
    from test_sweep import MICRO

    from orbitfl.sweeps.replicates import derived_seeds

    out = tmp_path / "sweep"
    micro = {**copy.deepcopy(MICRO), "report": {"figures": False}}  # runs only: seconds
    study = orbitfl.sweep(micro, {"links.downlink.rate_mbps": (5, 50)},
                          replicates=2, workers=2, out=out, progress=False)
    table = study.table
    assert list(table["point"]) == [f"micro-{i:03d}-r{k}" for i in range(2) for k in range(2)]
    assert (table["status"] == "complete").all() and list(table["replicate"]) == [0, 1] * 2
    assert list(table["seed"]) == derived_seeds(MICRO["seed"], 2) * 2
    assert list(table["group"]) == ["links.downlink.rate_mbps=5"] * 2 + \
        ["links.downlink.rate_mbps=50"] * 2
    assert all((out / "runs" / p / "manifest.json").is_file() for p in table["point"])
    summary = study.summary.set_index(["group", "metric"])
    for group, runs in table.groupby("group"):
        accuracy = summary.loc[(group, "final_accuracy")]
        assert accuracy["n"] == 2 and accuracy["mean"] == pytest.approx(
            runs["final_accuracy"].mean())
        assert accuracy["lo"] <= accuracy["mean"] <= accuracy["hi"]
        assert summary.loc[(group, "to_0.5_round"), "n"] == 2  # reached or censored
    assert repr(study) == f"Sweep({str(out)!r}: 4 runs in 2 groups, 4 complete)"

    again = orbitfl.sweep(micro, {"links.downlink.rate_mbps": [5, 50]},
                          replicates=2, out=out, progress=False)
    assert again.table["reused"].all()  # the same runs, found complete
    written = again.report(tmp_path / "report")
    assert {"pareto.png", "dashboard.html"} <= {p.name for p in written}
    run = orbitfl.open_run(out / "runs" / "micro-000-r0")
    assert repr(run).startswith(f"Run({str(run.path)!r}: 1 rounds, final accuracy ")
    assert orbitfl.open_sweep(out).summary.equals(study.summary)


def test_the_package_lists_the_api_and_imports_without_torch():
    assert {"load_scenario", "contacts", "run", "open_run", "sweep", "open_sweep"} <= \
        set(dir(orbitfl))
    importlib.import_module("orbitfl.sweeps.runner")  # (a submodule once shadowed the name)
    assert orbitfl.sweep is orbitfl.api.sweep
    code = "import sys, orbitfl; dir(orbitfl); print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "False", result.stderr


def test_bad_sweep_arguments_are_one_line_errors(tmp_path):
    with pytest.raises(InputError, match=r"^<sweep>: replicates: expected at least 1"):
        orbitfl.sweep(copy.deepcopy(TINY), {"fl.rounds": [1]}, replicates=0, out=tmp_path)
    with pytest.raises(InputError, match=r"^<sweep>: parameters.fl.rounds: expected a "):
        orbitfl.sweep(copy.deepcopy(TINY), {"fl.rounds": 3}, out=tmp_path)
    with pytest.raises(InputError, match="not a sweep directory"):
        orbitfl.open_sweep(tmp_path)
    assert not any(tmp_path.iterdir())


def test_a_damaged_sweep_table_is_one_input_error(tmp_path):
    """``open_sweep``'s tables are read by the run-directory reader, their declared
    columns' types checked (issue 24)."""
    import pandas as pd

    (tmp_path / "sweep.parquet").write_text("not parquet")
    pd.DataFrame({"group": ["g"], "metric": [3]}).to_parquet(tmp_path / "sweep_summary.parquet")
    study = orbitfl.open_sweep(tmp_path)
    with pytest.raises(InputError, match=r"sweep.parquet is not a readable parquet table"):
        study.table
    with pytest.raises(InputError, match=r"column 'metric' holds int64 values, declared str"):
        study.summary
