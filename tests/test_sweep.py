"""Sweeps: expansion, local and Ray backends agreeing, resumability, failing points."""

import numpy as np
import pandas as pd
import pytest
import yaml

from orbitfl.cli import main
from orbitfl.errors import InputError
from orbitfl.sweep import Point, apply, expand, parameter_table, pareto_front, plan_points

from conftest import TLE_DIR

MICRO = {
    "name": "micro", "seed": 1, "epoch": "2024-07-16T06:00:00Z", "duration": "4h",
    "constellation": {"tle": str(TLE_DIR / "planet_2024-07-16.tle"),
                      "select": {"name": "FLOCK 4Y*", "limit": 2}},
    "ground_stations": {"sites": ["svalsat"]},
    "links": {"downlink": {"rate_mbps": 50}, "uplink": {"rate_mbps": 1}},
    "contacts": {"cache": True},
    "data": {"dataset": "synthetic", "classes": 2, "image_size": 16,
             "samples_per_class_max": 30, "test_per_class": 10, "ses_per_class": 2,
             "partition": "iid"},
    "fl": {"strategy": "fedavg", "rounds": 1, "schedule": {"deadline": "2h", "min_clients": 1}},
}


@pytest.fixture(scope="module")
def sweep_file(tmp_path_factory):
    base = tmp_path_factory.mktemp("sweep")
    (base / "micro.yaml").write_text(yaml.safe_dump(MICRO))
    (base / "sweep.yaml").write_text(yaml.safe_dump({
        "base": "micro.yaml", "mode": "grid",
        "parameters": {"seed": [1, 2, 3], "fl.strategy": ["fedavg", "fedprox"],
                       "links.downlink.rate_mbps": [5, 50]}}))
    return base / "sweep.yaml"


def test_grid_and_zip_expansion_and_dotted_paths():
    grid = expand({}, {"a": [1, 2], "b.c": ["x", "y", "z"]}, "grid")
    assert len(grid) == 6 and grid[0] == {"a": 1, "b.c": "x"}
    assert expand({}, {"a": [1, 2], "b": [3, 4]}, "zip") == [{"a": 1, "b": 3}, {"a": 2, "b": 4}]
    document = apply({"fl": {"rounds": 1}}, {"fl.safe.cro": False, "seed": 9})
    assert document == {"fl": {"rounds": 1, "safe": {"cro": False}}, "seed": 9}


def test_parameter_table_has_one_type_per_column(tmp_path):
    values = [{"links.downlink": {"preset": "uhf"}, "x": 5},
              {"links.downlink": {"rate_mbps": 50}, "x": "auto"}]
    points = [Point(i, f"p{i}", v, tmp_path / "s.yaml", tmp_path / "r") for i, v in
              enumerate(values)]
    table = parameter_table(points)
    assert list(table["links.downlink"]) == ["{preset: uhf}", "{rate_mbps: 50}"]
    assert list(table["x"]) == ["5", "auto"]
    table.to_parquet(tmp_path / "t.parquet")  # one parquet type per column


def test_pareto_front_is_the_non_dominated_set():
    total = np.array([10.0, 20.0, 15.0, 30.0, 12.0])
    accuracy = np.array([0.5, 0.7, 0.4, 0.72, 0.6])
    assert list(pareto_front(total, accuracy)) == [0, 4, 1, 3]


def test_twelve_point_sweep_local_then_ray_then_resume(sweep_file, capsys):
    out_local = sweep_file.parent / "local"
    assert main(["sweep", str(sweep_file), "--out", str(out_local), "--workers", "2"]) == 0
    local = pd.read_parquet(out_local / "sweep.parquet")
    assert len(local) == 12 and (local.status == "complete").all()
    assert {"seed", "fl.strategy", "links.downlink.rate_mbps", "final_accuracy",
            "bytes_up", "sim_time_h"} <= set(local.columns)
    for row in local.itertuples():  # headline = the run directory's last round
        last = pd.read_parquet(out_local / "runs" / row.point / "rounds.parquet").iloc[-1]
        np.testing.assert_equal([row.final_accuracy, row.few_shot_accuracy, row.energy_j],
                                [last.accuracy, last.few_shot_accuracy, last.energy_j])
    assert (out_local / "pareto.png").stat().st_size > 10_000

    out_ray = sweep_file.parent / "ray"
    assert main(["sweep", str(sweep_file), "--out", str(out_ray), "--backend", "ray",
                 "--workers", "2"]) == 0
    ray = pd.read_parquet(out_ray / "sweep.parquet")
    merged = local.merge(ray, on="point", suffixes=("_local", "_ray"))
    np.testing.assert_allclose(merged.final_accuracy_local, merged.final_accuracy_ray)

    capsys.readouterr()
    assert main(["sweep", str(sweep_file), "--out", str(out_local)]) == 0
    err = capsys.readouterr().err
    assert "12 already done, 0 to run" in err
    again = pd.read_parquet(out_local / "sweep.parquet")
    assert again.get("reused").all()
    pd.testing.assert_frame_equal(again.drop(columns=["reused", "wall_time_total_s"]),
                                  local.drop(columns=["wall_time_total_s"]))


def test_a_failing_point_is_reported_and_the_others_run(tmp_path):
    (tmp_path / "micro.yaml").write_text(yaml.safe_dump(MICRO))
    (tmp_path / "sweep.yaml").write_text(yaml.safe_dump({
        "base": "micro.yaml", "parameters": {"fl.schedule.min_clients": [1, 5]}}))
    assert main(["sweep", str(tmp_path / "sweep.yaml"), "--out", str(tmp_path / "out")]) == 1
    table = pd.read_parquet(tmp_path / "out" / "sweep.parquet")
    assert list(table.status) == ["complete", "failed"]
    assert "min_clients: 5 exceeds the 2 selected satellites" in table.error.iloc[1]


def test_bad_sweep_points_name_the_point(tmp_path):
    (tmp_path / "micro.yaml").write_text(yaml.safe_dump(MICRO))
    (tmp_path / "sweep.yaml").write_text(yaml.safe_dump({
        "base": "micro.yaml", "parameters": {"fl.rounds": [1, -2]}}))
    with pytest.raises(InputError, match=r"point 1 \{'fl.rounds': -2\}: .*fl.rounds"):
        plan_points(tmp_path / "sweep.yaml", tmp_path / "out")
