"""Sweeps: expansion, local and Ray backends agreeing, resumability, failing points,
Ctrl-C, dead workers, invalid points and paths relative to the sweep file."""

import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from orbitfl.analysis.pareto import pareto_front
from orbitfl.cli import main
from orbitfl.sweeps.runner import (
    Point,
    expand,
    parameter_table,
    plan_points,
    point_scenario,
    run_point,
)

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
        "parameters": {"seed": [1, 2], "fl.strategy": ["fedavg", "fedprox"],
                       "links.downlink.rate_mbps": [5, 50]}}))
    return base / "sweep.yaml"


def test_grid_and_zip_expansion_and_dotted_paths():
    grid = expand({}, {"a": [1, 2], "b.c": ["x", "y", "z"]}, "grid")
    assert len(grid) == 6 and grid[0] == {"a": 1, "b.c": "x"}
    assert expand({}, {"a": [1, 2], "b": [3, 4]}, "zip") == [{"a": 1, "b": 3}, {"a": 2, "b": 4}]


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


def test_grid_sweep_local_then_ray_then_resume(sweep_file, capsys):
    out_local = sweep_file.parent / "local"
    assert main(["sweep", str(sweep_file), "--out", str(out_local), "--workers", "2"]) == 0
    local = pd.read_parquet(out_local / "sweep.parquet")
    assert len(local) == 8 and (local.status == "complete").all()
    assert {"seed", "fl.strategy", "links.downlink.rate_mbps", "final_accuracy",
            "bytes_up", "sim_time_h", "train_imbalance_factor", "to_0.7_sim_time_s",
            "to_0.7_bytes_down", "to_0.7_wall_time_s"} <= set(local.columns)
    for _, row in local.iterrows():  # headline = the run directory's last round
        last = pd.read_parquet(out_local / "runs" / row.point / "rounds.parquet").iloc[-1]
        np.testing.assert_equal([row.final_accuracy, row.few_shot_accuracy, row.energy_j],
                                [last.accuracy, last.few_shot_accuracy, last.energy_j])
        rounds = pd.read_parquet(out_local / "runs" / row.point / "rounds.parquet")
        reached = rounds.loc[rounds.accuracy >= 0.5, "round"]
        np.testing.assert_equal(row["to_0.5_round"],
                                reached.iloc[0] if len(reached) else np.nan)
    assert (out_local / "pareto.png").stat().st_size > 10_000

    out_ray = sweep_file.parent / "ray"
    assert main(["sweep", str(sweep_file), "--out", str(out_ray), "--backend", "ray",
                 "--workers", "2"]) == 0
    ray = pd.read_parquet(out_ray / "sweep.parquet")
    merged = local.merge(ray, on="point", suffixes=("_local", "_ray"))
    np.testing.assert_allclose(merged.final_accuracy_local, merged.final_accuracy_ray)

    capsys.readouterr()
    assert main(["sweep", str(sweep_file), "--out", str(out_local)]) == 0
    out, err = capsys.readouterr()
    assert "8 already done, 0 to run" in err
    assert "(8 reused from an earlier call, not counted)" in out  # not a 0 s sweep
    again = pd.read_parquet(out_local / "sweep.parquet")
    assert again.get("reused").all()
    assert not local.reused.any()
    pd.testing.assert_frame_equal(again.drop(columns=["reused", "wall_time_total_s"]),
                                  local.drop(columns=["reused", "wall_time_total_s"]))

    report = sweep_file.parent / "sweep-report"   # orbitfl report SWEEP_DIR
    assert main(["report", str(out_local), "--out", str(report), "--format", "png,pdf"]) == 0
    assert {"pareto.png", "pareto.pdf", "dashboard.html", "summary.md", "summary.csv",
            "time_to_target.pdf"} <= {p.name for p in report.iterdir()}
    summary = pd.read_csv(report / "summary.csv")   # seed is the replicate axis: 2 a group
    assert len(set(summary["group"])) == 4 and (summary["n"] == 2).all()
    assert "fl.strategy" in (report / "dashboard.html").read_text()


def test_failing_and_invalid_points_are_reported_and_the_valid_ones_run(tmp_path):
    (tmp_path / "micro.yaml").write_text(yaml.safe_dump(MICRO))
    (tmp_path / "sweep.yaml").write_text(yaml.safe_dump({
        "base": "micro.yaml", "mode": "zip",
        "parameters": {"fl.schedule.min_clients": [1, 5, 1], "fl.rounds": [1, 1, -2]}}))
    assert main(["sweep", str(tmp_path / "sweep.yaml"), "--out", str(tmp_path / "out")]) == 1
    table = pd.read_parquet(tmp_path / "out" / "sweep.parquet")
    assert list(table.status) == ["complete", "failed", "invalid"]
    assert "min_clients: 5 exceeds the 2 selected satellites" in table.error.iloc[1]
    assert "point 2 {'fl.rounds': -2, 'fl.schedule.min_clients': 1}" in table.error.iloc[2]
    assert "fl.rounds" in table.error.iloc[2] and "\n" not in table.error.iloc[2]
    assert not (tmp_path / "out" / "runs" / "sweep-002").exists()


def test_bad_sweep_points_name_the_point(tmp_path):
    (tmp_path / "micro.yaml").write_text(yaml.safe_dump(MICRO))
    (tmp_path / "sweep.yaml").write_text(yaml.safe_dump({
        "base": "micro.yaml", "parameters": {"fl.rounds": [1, -2]}}))
    points, _ = plan_points(tmp_path / "sweep.yaml", tmp_path / "out")
    assert points[0].error is None
    assert str(tmp_path / "sweep.yaml") in points[1].error
    assert "point 1 {'fl.rounds': -2}: " in points[1].error and "fl.rounds" in points[1].error


def test_sweep_files_are_read_as_strictly_as_scenarios(tmp_path, capsys):
    """Duplicate keys silently took the last value; the sweep file had no size cap."""
    (tmp_path / "micro.yaml").write_text(yaml.safe_dump(MICRO))
    (tmp_path / "sweep.yaml").write_text("base: micro.yaml\nparameters:\n  seed: [1, 2]\n"
                                         "  seed: [3]\n")
    assert main(["sweep", str(tmp_path / "sweep.yaml"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "sweep.yaml:4" in err and "seed" in err
    assert not (tmp_path / "o").exists()


def test_parameter_paths_resolve_against_the_sweep_file(tmp_path):
    """A path given in the sweep file is relative to the sweep file, as the base's paths are
    relative to the base, wherever the point files are written."""
    (tmp_path / "tle").mkdir()
    shutil.copy(TLE_DIR / "planet_2024-07-16.tle", tmp_path / "tle" / "x.tle")
    (tmp_path / "micro.yaml").write_text(yaml.safe_dump(MICRO))
    (tmp_path / "sweeps").mkdir()
    sweep = tmp_path / "sweeps" / "s.yaml"
    for parameters in ({"constellation.tle": ["../tle/x.tle"]},
                       {"constellation": [{"tle": "../tle/x.tle", "select": {"limit": 1}}]}):
        sweep.write_text(yaml.safe_dump({"base": "../micro.yaml", "parameters": parameters}))
        points, _ = plan_points(sweep, tmp_path / "elsewhere" / "out")
        assert [p.error for p in points] == [None]
        assert points[0].scenario.constellation.tle == (tmp_path / "tle" / "x.tle").resolve()
        assert point_scenario(points[0].scenario_file) == points[0].scenario


def test_sweep_names_cannot_leave_the_sweep_folder(tmp_path):
    (tmp_path / "micro.yaml").write_text(yaml.safe_dump(MICRO))
    (tmp_path / "sweep.yaml").write_text(yaml.safe_dump({
        "name": "../../" + "x" * 300, "base": "micro.yaml", "parameters": {"seed": [1]}}))
    out = tmp_path / "a" / "out"
    points, _ = plan_points(tmp_path / "sweep.yaml", out)
    for path in (points[0].scenario_file, points[0].run_dir):
        assert path.resolve().is_relative_to(out.resolve())
        assert ".." not in path.relative_to(out).parts and len(path.name) < 120


# Tiny points around one of many cheap rounds: the second is still running long after its
# first checkpoint, whatever the load of the machine.
SLOW_SECOND = {"mode": "zip", "parameters": {"duration": ["4h", "2d", "4h"],
                                             "fl.rounds": [1, 20, 1]}}


def _sweep_with_slow_second_point(tmp_path: Path) -> Path:
    (tmp_path / "micro.yaml").write_text(yaml.safe_dump(MICRO))
    (tmp_path / "sweep.yaml").write_text(yaml.safe_dump({"base": "micro.yaml", **SLOW_SECOND}))
    return tmp_path / "sweep.yaml"


def _wait_for(path: Path, alive, timeout_s: float = 300) -> None:
    deadline = time.time() + timeout_s
    while not path.exists():
        assert alive(), f"the sweep ended before {path} appeared"
        assert time.time() < deadline, f"{path} did not appear"
        time.sleep(0.05)


def test_ctrl_c_stops_the_whole_sweep_and_a_rerun_resumes_from_the_checkpoint(tmp_path):
    sweep, out = _sweep_with_slow_second_point(tmp_path), tmp_path / "out"
    process = subprocess.Popen([sys.executable, "-m", "orbitfl.cli", "sweep", str(sweep),
                                "--out", str(out)], stderr=subprocess.PIPE, text=True)
    checkpoint = out / "runs" / ".sweep-001.partial" / "checkpoint.pt"
    _wait_for(checkpoint, lambda: process.poll() is None)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)  # promptly: not after the 19 rounds left
    assert process.returncode == 130, err
    assert "Traceback" not in err
    table = pd.read_parquet(out / "sweep.parquet")
    assert list(table.status) == ["complete", "interrupted", "interrupted"]
    assert (out / "sweep_summary.parquet").is_file()  # written after Ctrl-C too
    assert checkpoint.is_file() and not (out / "runs" / "sweep-001").exists()
    assert not (out / "runs" / "sweep-002").exists()  # the rest did not run after Ctrl-C

    assert main(["sweep", str(sweep), "--out", str(out), "--workers", "2"]) == 0
    table = pd.read_parquet(out / "sweep.parquet")
    assert list(table.status) == ["complete"] * 3 and list(table.rounds) == [1, 20, 1]
    assert list(table.reused) == [True, False, False]
    log = (out / "points" / "sweep-001.log").read_text()
    assert "resuming after round" in log
    assert "round 20/20" in log and "acc " in log and "withheld" not in log  # not blind


def _children(pid: int) -> list[int]:
    tasks = Path(f"/proc/{pid}/task")
    return [int(c) for t in tasks.iterdir() for c in (t / "children").read_text().split()]


def _kill_worker_when(path: Path, point: str, done: threading.Event, killed: list) -> None:
    """SIGKILL the worker of ``point`` (a child of this process naming the point's file)
    once ``path`` exists, as the kernel's out-of-memory killer would."""
    _wait_for(path, lambda: not done.is_set())
    for child in _children(os.getpid()):
        if point.encode() in Path(f"/proc/{child}/cmdline").read_bytes():
            os.kill(child, signal.SIGKILL)
            killed.append(child)


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="finds workers in /proc")
def test_a_killed_worker_fails_only_its_point(tmp_path):
    sweep, out = _sweep_with_slow_second_point(tmp_path), tmp_path / "out"
    done, killed = threading.Event(), []
    killer = threading.Thread(target=_kill_worker_when, args=(
        out / "runs" / ".sweep-001.partial" / "checkpoint.pt", "sweep-001.json", done, killed))
    killer.start()
    try:
        code = main(["sweep", str(sweep), "--out", str(out), "--workers", "2"])
    finally:
        done.set()
        killer.join()
    assert len(killed) == 1 and code == 1
    table = pd.read_parquet(out / "sweep.parquet")
    assert list(table.status) == ["complete", "failed", "complete"]
    assert "SIGKILL" in table.error.iloc[1]


def test_an_edited_sweep_neither_resumes_nor_reuses_another_scenario(tmp_path, monkeypatch):
    """After the sweep file changes, a point's checkpoint of the old scenario is discarded
    (the point starts afresh) and a complete run of the old scenario is reported, not
    overwritten."""
    import orbitfl.engine.runner as runner

    sweep = tmp_path / "sweep.yaml"
    (tmp_path / "micro.yaml").write_text(yaml.safe_dump({**MICRO, "duration": "1d",
                                                         "fl": {**MICRO["fl"], "rounds": 3}}))
    save = runner._save_checkpoint

    def save_then_stop(checkpoint, path, scenario):
        save(checkpoint, path, scenario)
        raise KeyboardInterrupt

    sweep.write_text(yaml.safe_dump({"base": "micro.yaml", "parameters": {"seed": [1]}}))
    point = plan_points(sweep, tmp_path / "out")[0][0]
    monkeypatch.setattr(runner, "_save_checkpoint", save_then_stop)
    result = run_point(str(point.scenario_file), str(point.run_dir), 1, str(point.log_file))
    monkeypatch.setattr(runner, "_save_checkpoint", save)
    assert result["status"] == "interrupted", result
    # the edited point runs in a worker process, whose lines still reach the point's log
    sweep.write_text(yaml.safe_dump({"base": "micro.yaml", "parameters": {"seed": [2]}}))
    assert main(["sweep", str(sweep), "--out", str(tmp_path / "out")]) == 0
    assert pd.read_parquet(tmp_path / "out" / "sweep.parquet").status.tolist() == ["complete"]
    assert "discarded" in point.log_file.read_text()

    sweep.write_text(yaml.safe_dump({"base": "micro.yaml", "parameters": {"seed": [3]}}))
    assert main(["sweep", str(sweep), "--out", str(tmp_path / "out")]) == 1
    table = pd.read_parquet(tmp_path / "out" / "sweep.parquet")
    assert table.status.iloc[0] == "failed"
    assert "another scenario" in table.error.iloc[0] and "--out" in table.error.iloc[0]
    assert (point.run_dir / "manifest.json").is_file()


def test_a_point_computed_by_other_code_is_reported_not_reused(tmp_path, monkeypatch):
    """The same scenario computed by other orbitfl code is another result: a rerun of the
    sweep after the code changed neither reuses nor overwrites it (code_identity)."""
    import orbitfl.sweeps.runner as sweep_runner

    (tmp_path / "micro.yaml").write_text(yaml.safe_dump(MICRO))
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(yaml.safe_dump({"base": "micro.yaml", "parameters": {"seed": [1]}}))
    out = tmp_path / "out"
    assert main(["sweep", str(sweep), "--out", str(out)]) == 0
    manifest = (out / "runs" / "sweep-000" / "manifest.json").read_bytes()
    assert main(["sweep", str(sweep), "--out", str(out)]) == 0  # same code: reused
    assert pd.read_parquet(out / "sweep.parquet").reused.tolist() == [True]

    monkeypatch.setattr(sweep_runner, "code_sha256", lambda: "f" * 64)
    assert main(["sweep", str(sweep), "--out", str(out)]) == 1
    table = pd.read_parquet(out / "sweep.parquet")
    assert table.status.tolist() == ["failed"]
    assert "other orbitfl code" in table.error.iloc[0] and "ffffffffffff" in table.error.iloc[0]
    assert (out / "runs" / "sweep-000" / "manifest.json").read_bytes() == manifest


def test_a_carried_row_stands_for_its_own_scenario_and_code_only(tmp_path, caplog):
    """A point finished on another machine (its row carried by content hash) is not run
    again; a row of another scenario, or of other code, is ignored and the point runs.
    A blind sweep's status lines and point logs name no score; its table keeps them."""
    from orbitfl.core.code_identity import code_sha256
    from orbitfl.sweeps.runner import load_sweep, plan, run_spec

    (tmp_path / "micro.yaml").write_text(yaml.safe_dump(MICRO))
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(yaml.safe_dump({"base": "micro.yaml", "parameters": {"seed": [1, 2, 3]}}))
    spec = load_sweep(sweep)
    hashes = [p.scenario.content_hash() for p in plan(spec, tmp_path / "plan")]
    row = {"wall_s": 12.5, "final_accuracy": 0.75, "code_sha256": code_sha256()}
    carried = {hashes[0]: row, hashes[1]: {**row, "code_sha256": "f" * 64},
               "0" * 64: row}                  # another scenario's row: never matched
    with caplog.at_level(logging.INFO, logger="orbitfl"):
        table = run_spec(spec, tmp_path / "out", carried=carried, blind=True)
    assert table.status.tolist() == ["complete"] * 3
    finished = [r.getMessage() for r in caplog.records if "sweep-00" in r.getMessage()]
    assert len(finished) == 2 and all("complete" in line and "acc" not in line
                                      for line in finished)   # blind: no score printed
    log = (tmp_path / "out" / "points" / "sweep-001.log").read_text()
    rounds = [line for line in log.splitlines() if line.startswith("round ")]
    assert len(rounds) == MICRO["fl"]["rounds"] + 1 and "acc" not in log
    assert all("score withheld" in line for line in rounds) and " MB" in rounds[-1]
    assert table.final_accuracy.iloc[1:].between(0, 1).all()
    assert table.reused.tolist() == [True, False, False]
    assert table.final_accuracy.iloc[0] == 0.75 and table.wall_s.iloc[0] == 12.5
    assert not (tmp_path / "out" / "runs" / "sweep-000").exists()
    assert (tmp_path / "out" / "runs" / "sweep-001" / "manifest.json").is_file()
    assert "code_sha256" not in table


def test_pooled_sweeps_share_one_pool_and_keep_their_own_tables(tmp_path, caplog,
                                                                monkeypatch):
    """A sweep with fewer points left than workers shares the pool with the next one (a
    study's methods at one setting): one pool runs every point, and each folder gets
    its own table of its own points."""
    from orbitfl.sweeps import runner

    (tmp_path / "micro.yaml").write_text(yaml.safe_dump(MICRO))
    specs = []
    for name, seeds in (("one", [1]), ("two", [2, 3])):
        sweep = tmp_path / f"{name}.yaml"
        sweep.write_text(yaml.safe_dump({"base": "micro.yaml", "parameters": {"seed": seeds}}))
        specs.append((runner.load_sweep(sweep), tmp_path / name))
    pools = []
    real_local = runner._local
    monkeypatch.setattr(runner, "_local", lambda points, done, workers, address, blind: (
        pools.append(([p.run_dir.parent.parent.name for p in points], workers)),
        real_local(points, done, workers, address, blind)))
    with caplog.at_level(logging.INFO, logger="orbitfl"):
        one, two = runner.run_specs(specs, workers=2, blind=True)
    assert pools == [(["one", "two", "two"], 2)]
    assert one.seed.tolist() == [1] and two.seed.tolist() == [2, 3]
    assert (one.status == "complete").all() and (two.status == "complete").all()
    assert pd.read_parquet(tmp_path / "two" / "sweep.parquet").seed.tolist() == [2, 3]
    lines = [r.getMessage() for r in caplog.records]
    assert any(line.startswith("[2/2] two/two-00") for line in lines)
    # resumed: nothing runs again
    pools.clear()
    runner.run_specs(specs, workers=2)
    assert pools == []
    with pytest.raises(runner.InputError, match="two sweeps share one folder"):
        runner.run_specs([specs[0], (specs[1][0], tmp_path / "one")])


@pytest.mark.parametrize("options, message", [
    (["--workers", "-1"], "--workers: expected at least 1"),
    (["--address", "localhost:6379"], "--address applies to --backend ray"),
    (["--out", "{tmp}/file"], "sweep directory exists and is not a folder"),
])
def test_bad_sweep_options_are_one_line_errors(tmp_path, capsys, options, message):
    (tmp_path / "micro.yaml").write_text(yaml.safe_dump(MICRO))
    (tmp_path / "sweep.yaml").write_text(yaml.safe_dump({
        "base": "micro.yaml", "parameters": {"seed": [1]}}))
    out, options = tmp_path / "out", [o.format(tmp=tmp_path) for o in options]
    (tmp_path / "file").write_text("not a folder")
    assert main(["sweep", str(tmp_path / "sweep.yaml"), "--out", str(out), *options]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not out.exists() and (tmp_path / "file").read_text() == "not a folder"


def test_a_sweep_of_a_contact_plan_is_refused_at_once(tmp_path, capsys):
    base = {k: v for k, v in MICRO.items() if k != "fl"}  # a valid contact plan
    (tmp_path / "plan.yaml").write_text(yaml.safe_dump(base))
    (tmp_path / "sweep.yaml").write_text(yaml.safe_dump({
        "base": "plan.yaml", "parameters": {"seed": [1, 2]}}))
    out = tmp_path / "out"
    assert main(["sweep", str(tmp_path / "sweep.yaml"), "--out", str(out)]) == 2
    assert capsys.readouterr().err == f"error: {tmp_path / 'sweep.yaml'}: base: the scenario " \
                                      "has no fl: section; every point of a sweep is a run, " \
                                      "which needs one\n"
    assert not out.exists()


class _StubRay:
    """Ray's calls as ``_ray`` makes them: the first task completes, the second's worker
    dies, then Ctrl-C arrives while the third is pending."""

    class exceptions:
        class RayError(Exception):
            pass

    def __init__(self):
        self.options, self.cancelled, self.waits = None, [], 0

    def is_initialized(self) -> bool:
        return True

    def remote(self, **options):
        self.options = options
        return lambda function: type("Remote", (), {"remote": staticmethod(
            lambda scenario_file, *args: scenario_file)})

    def wait(self, refs, num_returns=1, timeout=None):
        self.waits += 1
        if self.waits == 3:
            raise KeyboardInterrupt
        return (refs[:1], refs[1:]) if timeout is None else ([], refs)

    def get(self, ref):
        if ref.endswith("p1.yaml"):
            raise self.exceptions.RayError("The worker died unexpectedly\ndetails")
        return {"status": "complete", "wall_s": 1.0}

    def cancel(self, ref):
        self.cancelled.append(ref)


def test_ray_backend_fails_a_dead_task_and_cancels_on_ctrl_c(tmp_path, monkeypatch):
    from orbitfl.sweeps.runner import _ray

    stub = _StubRay()
    monkeypatch.setitem(sys.modules, "ray", stub)
    points = [Point(i, f"p{i}", {}, tmp_path / f"p{i}.yaml", tmp_path / f"r{i}")
              for i in range(3)]
    results = {}
    with pytest.raises(KeyboardInterrupt):
        _ray(points, lambda point, result: results.update({point.name: result}), 1, None)
    assert stub.options["max_retries"] == 0  # a retry would race the dead run's folder
    assert [results[p]["status"] for p in ("p0", "p1", "p2")] == \
        ["complete", "failed", "interrupted"]
    assert results["p1"]["error"] == "RayError: The worker died unexpectedly"
    assert stub.cancelled == [str(tmp_path / "p2.yaml")]


HUGE_GRID = {f"p{i}": list(range(10)) for i in range(12)}  # 10**12 points in ~400 bytes


@pytest.mark.parametrize("document, message", [
    ({"replicates": 0}, "replicates: expected at least 1 run per point, got 0"),
    ({"replicates": -3}, "replicates: expected at least 1"),
    ({"replicates": 1.5}, "replicates: expected a whole number of runs per point, got 1.5"),
    ({"replicates": "3"}, "replicates: expected a whole number"),
    ({"replicates": True}, "replicates: expected a whole number"),
    ({"replicates": float("nan")}, "replicates: expected a whole number"),
    ({"replicates": float("inf")}, "replicates: expected a whole number"),
    ({"replicates": None}, "replicates: expected a whole number"),
    ({"replicates": [2]}, "replicates: expected a whole number"),
    ({"replicates": 10**30}, "runs per point exceed the limit of 1,000"),
    ({"seeds": []}, "seeds: expected a non-empty list of integer seeds"),
    ({"seeds": 3}, "seeds: expected a non-empty list"),
    ({"seeds": [1, 2, 1]}, "seeds: 1 is given twice"),
    ({"seeds": [1, 2.5]}, "seeds[1]: expected an integer seed, got 2.5"),
    ({"seeds": [float("nan")]}, "seeds[0]: expected an integer seed"),
    ({"seeds": ["x"]}, "seeds[0]: expected an integer seed, got 'x'"),
    ({"seeds": [-1]}, "seeds[0]: a seed lies between 0 and 2**63 - 1"),
    ({"seeds": [2**63]}, "seeds[0]: a seed lies between 0 and 2**63 - 1"),
    ({"seeds": list(range(1001))}, "seeds: 1001 runs per point exceed the limit"),
    ({"replicates": 2, "seeds": [1, 2]}, "either replicates"),
    ({"replicates": 2, "parameters": {"seed": [1, 2]}}, "parameters.seed: the seeds come "
                                                        "from replicates"),
    ({"seeds": [1], "parameters": {"seed": [1, 2]}}, "parameters.seed: the seeds come "
                                                     "from seeds"),
    ({"parameters": HUGE_GRID}, "= 1,000,000,000,000 runs exceed the limit of 10,000"),
    ({"parameters": {"fl.rounds": list(range(1, 101))}, "replicates": 101},
     "100 x 101 replicates = 10,100 runs exceed the limit"),
])
def test_bad_replicates_are_one_line_errors_before_any_point(tmp_path, capsys, document,
                                                            message):
    (tmp_path / "micro.yaml").write_text(yaml.safe_dump(MICRO))
    (tmp_path / "sweep.yaml").write_text(yaml.safe_dump({
        "base": "micro.yaml", "parameters": {"fl.rounds": [1]}, **document}))
    out = tmp_path / "out"
    assert main(["sweep", str(tmp_path / "sweep.yaml"), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err
    assert str(tmp_path / "sweep.yaml") in err
    assert not out.exists()


def test_the_code_identity_covers_what_a_run_executes_and_not_the_studies():
    """A study's driver or report may change without making its finished runs another
    code's results; the engine, physics, learning and analysis may not."""
    from orbitfl.core.code_identity import code_modules

    names = set(code_modules())
    assert {"orbitfl.engine.runner", "orbitfl.cli", "orbitfl.constellation.network",
            "orbitfl.fl.strategy", "orbitfl.analysis.report", "orbitfl.core.errors"} <= names
    assert not [n for n in names if n.startswith("orbitfl.studies")]
    assert not [n for n in names if n.startswith(("orbitfl.tle", "orbitfl.scenarios"))]
