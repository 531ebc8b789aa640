"""A designed (Walker) constellation has no element file: its runs, checkpoints, manifests
and sweep reuse must not read one."""

import json
from pathlib import Path

import pandas as pd
import yaml

from orbitfl.scenario import load_scenario

from conftest import interrupt_and_resume

WALKER = {
    "name": "walker-tiny", "seed": 11, "epoch": "2024-07-16T06:00:00Z", "duration": "12h",
    "constellation": {"walker": {"planes": 2, "per_plane": 2, "phasing": 1,
                                 "altitude_km": 550, "inclination_deg": 97.6}},
    "ground_stations": {"sites": ["svalsat", "kiruna"]},
    "links": {"downlink": {"rate_mbps": 1}, "uplink": {"rate_mbps": 0.5}},
    "data": {"dataset": "synthetic", "classes": 4, "image_size": 16,
             "samples_per_class_max": 60, "imbalance_ratio": 2, "test_per_class": 20,
             "partition": "iid"},
    "fl": {"strategy": "fedavg", "rounds": 2, "local_epochs": 1,
           "schedule": {"deadline": "2h", "min_clients": 2}},
}


def _write(tmp_path: Path, document: dict, name: str = "walker.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(document))
    return path


def test_walker_scenario_hash_covers_the_shell_and_needs_no_file(tmp_path):
    base = load_scenario(_write(tmp_path, WALKER)).content_hash()
    moved = {**WALKER, "constellation": {"walker": {**WALKER["constellation"]["walker"],
                                                    "phasing": 0}}}
    assert len(base) == 64
    assert load_scenario(_write(tmp_path, moved, "moved.yaml")).content_hash() != base


def test_walker_run_stops_after_a_checkpoint_resumes_and_completes(tmp_path, monkeypatch):
    """The checkpoint, the resume check and the manifest all hash the scenario."""
    scenario = _write(tmp_path, WALKER)
    interrupt_and_resume(scenario, tmp_path / "cut", monkeypatch, after_round=1)
    manifest = json.loads((tmp_path / "cut" / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["tle_sha256"] is None
    assert manifest["scenario_sha256"] == load_scenario(scenario).content_hash()
    assert manifest["scenario"]["constellation"]["walker"]["planes"] == 2
    assert len(manifest["satellites"]) == 4
    rounds = pd.read_parquet(tmp_path / "cut" / "rounds.parquet")
    assert list(rounds["round"]) == [0, 1, 2]
