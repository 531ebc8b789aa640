"""A mission whose satellites never see a station (a 89.9 degree mask) completes with 0
rounds and says so; every figure, the dashboard and ``orbitfl contacts`` cope with empty
tables (no contacts, no transfers, no client jobs, even no rounds)."""

import contextlib
import io
import json
import shutil
from types import SimpleNamespace

import pandas as pd
import pytest
import yaml
from test_end_to_end import TINY

from orbitfl.analysis.report import write_report
from orbitfl.cli import main
from orbitfl.engine import tables

FIGURES = ("accuracy_vs_bytes", "accuracy_vs_time", "few_shot_accuracy", "bytes_by_kind",
           "per_class_accuracy", "battery", "contact_gantt", "ground_tracks")
NO_CONTACTS = {**TINY, "name": "no-contacts", "duration": "2h",
               "ground_stations": {"sites": ["svalsat", "kiruna"], "min_elevation_deg": 89.9},
               "fl": {**TINY["fl"], "rounds": 2}}


@pytest.fixture(scope="module")
def silent_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("silent")
    scenario = base / "s.yaml"
    scenario.write_text(yaml.safe_dump(NO_CONTACTS))
    log = io.StringIO()
    with contextlib.redirect_stderr(log), contextlib.redirect_stdout(io.StringIO()):
        code = main(["run", str(scenario), "--out", str(base / "run")])
    return scenario, base / "run", code, log.getvalue()


def test_mission_without_contacts_completes_with_zero_rounds(silent_run):
    _, run_dir, code, log = silent_run
    assert code == 0, log
    assert "no round completed" in log and "no contact window" in log
    summary = json.loads((run_dir / "manifest.json").read_text())["summary"]
    assert summary["contacts"] == 0 and summary["rounds_completed"] == 0
    assert summary["bytes_up"] == summary["bytes_down"] == 0
    assert not list(run_dir.parent.glob(".run.partial*"))
    rounds = pd.read_parquet(run_dir / "rounds.parquet")  # round 1 closed empty at the end
    assert rounds["received"].sum() == 0 and rounds["sim_time_s"].max() == 2 * 3600
    transfers = pd.read_parquet(run_dir / "transfers.parquet")
    assert (transfers.status == "waiting").all() and transfers.air_bytes.sum() == 0
    for name in FIGURES:
        assert (run_dir / "figures" / f"{name}.png").is_file(), name
    assert (run_dir / "dashboard.html").is_file()


def test_report_copes_with_empty_rounds_contacts_and_transfers(silent_run, tmp_path):
    _, run_dir, _, _ = silent_run
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    rounds = pd.read_parquet(copy / "rounds.parquet")
    rounds.iloc[:0].to_parquet(copy / "rounds.parquet")      # not even round 0
    transfers = tables.transfers(SimpleNamespace(records=[]), set())
    assert list(transfers.columns) == list(tables.TRANSFER_COLUMNS)
    transfers.to_parquet(copy / "transfers.parquet")
    written = write_report([copy, run_dir], tmp_path / "report")
    assert {p.name for p in written} >= {f"{name}.png" for name in FIGURES} | {"dashboard.html"}


def test_contacts_command_with_an_empty_plan(silent_run, tmp_path, capsys):
    scenario = silent_run[0]
    args = ["contacts", str(scenario), "--out", str(tmp_path / "plan.csv"),
            "--gantt", str(tmp_path / "gantt.png"), "--ground-track", str(tmp_path / "gt.png")]
    assert main(args) == 0
    assert len(pd.read_csv(tmp_path / "plan.csv")) == 0
    assert (tmp_path / "gantt.png").is_file() and (tmp_path / "gt.png").is_file()
    out = capsys.readouterr().out
    assert "no contact window" in out and "Empty DataFrame" not in out
