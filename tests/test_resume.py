"""Checkpoint and resume: a run stopped after any round and resumed ends with exactly the
tables of an uninterrupted run; a run killed by a signal resumes the same way."""

import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

import orbitfl.assemble as assemble
import orbitfl.runner as runner
from orbitfl.cli import main

from conftest import TLE_DIR

TABLES = ("rounds", "transfers", "clients", "events", "power", "partition")
BASE = {
    "name": "resume", "seed": 5, "epoch": "2024-07-16T06:00:00Z", "duration": "12h",
    "constellation": {"tle": str(TLE_DIR / "planet_2024-07-16.tle"),
                      "select": {"name": "FLOCK 4X*", "limit": 4}},
    "ground_stations": {"sites": ["svalsat", "kiruna"]},
    "links": {"downlink": {"rate_mbps": 1}, "uplink": {"rate_mbps": 0.5}},
    "data": {"dataset": "synthetic", "classes": 4, "image_size": 16,
             "samples_per_class_max": 100, "imbalance_ratio": 4, "test_per_class": 30,
             "partition": "dirichlet", "dirichlet_alpha": 1.0, "ses_per_class": 3},
    "fl": {"strategy": "safe", "rounds": 6, "safe": {"ace_dim": 16},
           "compression": {"to_ground": "topk", "topk_ratio": 0.1},
           "schedule": {"deadline": "1h", "min_clients": 2}},
}
ASYNC = {**BASE, "fl": {"strategy": "fedbuff", "rounds": 5, "fedbuff": {"buffer_size": 2},
                        "schedule": {"mode": "async", "deadline": "3h"}}}


def _same_tables(a: Path, b: Path) -> None:
    for name in TABLES:
        pd.testing.assert_frame_equal(pd.read_parquet(a / f"{name}.parquet"),
                                      pd.read_parquet(b / f"{name}.parquet"), obj=name)


@pytest.mark.parametrize("document, stop_after", [(BASE, 2), (BASE, 4), (ASYNC, 2)],
                         ids=["sync-after-2", "sync-after-4", "async-after-2"])
def test_resumed_run_equals_uninterrupted_run(tmp_path, monkeypatch, document, stop_after):
    scenario = tmp_path / "s.yaml"
    scenario.write_text(yaml.safe_dump(document))
    runner.run(scenario, tmp_path / "full")
    save = runner._save_checkpoint

    def save_then_stop(checkpoint, path, sc):
        save(checkpoint, path, sc)
        if checkpoint["round"] == stop_after:
            raise KeyboardInterrupt

    monkeypatch.setattr(runner, "_save_checkpoint", save_then_stop)
    with pytest.raises(KeyboardInterrupt):
        runner.run(scenario, tmp_path / "cut")
    assert (tmp_path / ".cut.partial" / "checkpoint.pt").is_file()
    assert not (tmp_path / "cut").exists()
    monkeypatch.setattr(runner, "_save_checkpoint", save)
    runner.run(scenario, tmp_path / "cut", resume=True)
    _same_tables(tmp_path / "full", tmp_path / "cut")
    assert not (tmp_path / ".cut.partial").exists()
    assert not (tmp_path / "cut" / "checkpoint.pt").exists()


def test_killed_run_resumes_from_the_command_line(tmp_path):
    """Started with relative paths and a --set, the run stopped by SIGTERM prints the
    command that resumes it with real paths and the same --set; that very command, run
    from another folder, finishes it."""
    document = {**BASE, "data": {**BASE["data"], "samples_per_class_max": 400},
                "fl": {**BASE["fl"], "rounds": 8}}
    scenario = tmp_path / "my scenario.yaml"
    scenario.write_text(yaml.safe_dump(document))
    assert main(["run", str(scenario), "--out", str(tmp_path / "full"),
                 "--set", "fl.local_epochs=3"]) == 0
    process = subprocess.Popen([sys.executable, "-m", "orbitfl.cli", "run", scenario.name,
                                "--set", "fl.local_epochs=3", "--out", "cut"], cwd=tmp_path,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    checkpoint = tmp_path / ".cut.partial" / "checkpoint.pt"
    deadline = time.time() + 120
    while not checkpoint.exists() and time.time() < deadline and process.poll() is None:
        time.sleep(0.05)
    assert process.poll() is None, "the run finished before it could be killed"
    os.kill(process.pid, signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    hint = err.strip().splitlines()[-1]
    real = tmp_path.resolve()  # the folder as the run saw it
    assert hint == (f"interrupted: continue with: orbitfl run '{real / scenario.name}' "
                    f"--set fl.local_epochs=3 --resume {real / 'cut'}"), err
    assert "Traceback" not in err
    command = shlex.split(hint.split("continue with: ", 1)[1])
    assert command[:2] == ["orbitfl", "run"]
    (tmp_path / "elsewhere").mkdir()
    result = subprocess.run([sys.executable, "-m", "orbitfl.cli", *command[1:]],
                            cwd=tmp_path / "elsewhere", capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    assert "resuming after round" in result.stderr
    _same_tables(tmp_path / "full", tmp_path / "cut")


def test_resume_errors_are_one_line(tmp_path, capsys):
    scenario = tmp_path / "s.yaml"
    scenario.write_text(yaml.safe_dump(BASE))
    assert main(["run", str(scenario), "--resume", str(tmp_path / "nothing")]) == 2
    assert "nothing to resume" in capsys.readouterr().err
    (tmp_path / ".busy.partial").mkdir()
    (tmp_path / ".busy.partial" / "checkpoint.pt").write_bytes(b"x")
    assert main(["run", str(scenario), "--out", str(tmp_path / "busy")]) == 2
    assert "stopped early; continue it with --resume" in capsys.readouterr().err


def test_checkpoint_of_another_scenario_is_refused(tmp_path, monkeypatch, capsys):
    scenario = tmp_path / "s.yaml"
    scenario.write_text(yaml.safe_dump(BASE))
    save = runner._save_checkpoint

    def save_then_stop(checkpoint, path, sc):
        save(checkpoint, path, sc)
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "_save_checkpoint", save_then_stop)
    with pytest.raises(KeyboardInterrupt):
        runner.run(scenario, tmp_path / "cut")
    scenario.write_text(yaml.safe_dump({**BASE, "seed": 6}))
    assert main(["run", str(scenario), "--resume", str(tmp_path / "cut")]) == 2
    assert "belongs to a different scenario" in capsys.readouterr().err


class Simulated(Exception):
    """Raised where the simulation would start: reaching it means no check refused."""


@pytest.fixture
def no_simulation(monkeypatch):
    def expensive(*args, **kwargs):
        raise Simulated

    monkeypatch.setattr(assemble, "build_world", expensive)


def _write_checkpoint(path: Path, kind: str, scenario: Path) -> None:
    import torch

    from orbitfl.prepare import prepare

    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "garbage":
        path.write_bytes(os.urandom(300))
    elif kind == "truncated":
        torch.save({"round": 1, "strategy": {"w": torch.zeros(4000)}}, path)
        path.write_bytes(path.read_bytes()[:2000])
    elif kind == "not-a-mapping":
        torch.save([1, 2, 3], path)
    else:  # this scenario's hash, but not what a checkpoint holds
        torch.save({"scenario_sha256": prepare(scenario).scenario.content_hash(), "round": 1},
                   path)


@pytest.mark.parametrize("kind", ["garbage", "truncated", "not-a-mapping", "missing-keys"])
def test_damaged_checkpoint_is_one_line_before_simulating(tmp_path, capsys, no_simulation,
                                                          kind):
    scenario = tmp_path / "s.yaml"
    scenario.write_text(yaml.safe_dump(BASE))
    checkpoint = tmp_path / ".cut.partial" / "checkpoint.pt"
    _write_checkpoint(checkpoint, kind, scenario)
    assert main(["run", str(scenario), "--resume", str(tmp_path / "cut")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert err.startswith(f"error: {checkpoint}: damaged checkpoint")
    assert f"delete {tmp_path / '.cut.partial'}" in err
    assert checkpoint.is_file()  # left for the user to inspect or delete


def test_second_process_on_a_live_run_is_refused(tmp_path, capsys, no_simulation):
    from orbitfl.rundir import StagedRunDirectory

    scenario = tmp_path / "s.yaml"
    scenario.write_text(yaml.safe_dump(BASE))
    target = tmp_path / "live"
    with pytest.raises(RuntimeError), StagedRunDirectory(target) as staging:
        for args in (["--out", str(target)], ["--resume", str(target)]):
            assert main(["run", str(scenario), *args]) == 2
            assert "already running" in capsys.readouterr().err
            (staging / "checkpoint.pt").write_bytes(b"a round is done")
        raise RuntimeError("the live run stops")
    assert (staging / "checkpoint.pt").is_file()
    main(["run", str(scenario), "--resume", str(target)])  # released: no longer refused
    assert "already running" not in capsys.readouterr().err


def test_run_killed_before_its_first_checkpoint_does_not_block_the_next(tmp_path, capsys,
                                                                        no_simulation):
    scenario = tmp_path / "s.yaml"
    scenario.write_text(yaml.safe_dump(BASE))
    stale = tmp_path / ".cut.partial"
    stale.mkdir()
    (stale / ".lock").touch()  # what SIGKILL leaves: no checkpoint, nobody holds the lock
    assert main(["run", str(scenario), "--resume", str(tmp_path / "cut")]) == 2
    assert "without --resume" in capsys.readouterr().err
    with pytest.raises(Simulated):
        main(["run", str(scenario), "--out", str(tmp_path / "cut")])
    assert not stale.exists()


def test_interrupt_prints_the_real_resume_command_only_with_a_checkpoint(tmp_path, capsys,
                                                                         monkeypatch):
    scenario = tmp_path / "my scenario.yaml"
    scenario.write_text(yaml.safe_dump({**BASE, "fl": {**BASE["fl"], "rounds": 2}}))
    build_world = assemble.build_world

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(assemble, "build_world", interrupted)
    assert main(["run", str(scenario), "--out", str(tmp_path / "cut")]) == 130
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert "--resume" not in last and "nothing to resume" in last
    monkeypatch.setattr(assemble, "build_world", build_world)
    save = runner._save_checkpoint

    def save_then_stop(checkpoint, path, sc):
        save(checkpoint, path, sc)
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "_save_checkpoint", save_then_stop)
    assert main(["run", str(scenario), "--out", str(tmp_path / "cut")]) == 130
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last == (f"interrupted: continue with: orbitfl run '{scenario}' "
                    f"--resume {tmp_path / 'cut'}")
