"""Checkpoint and resume: a run stopped after any round and resumed ends with exactly the
tables of an uninterrupted run; a run killed by a signal resumes the same way."""

import copy
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

import orbitfl.engine.assemble as assemble
import orbitfl.engine.runner as runner
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
    optional = [n for n in ("safe_diagnostics",) if (a / f"{n}.parquet").exists()]
    for name in (*TABLES, *optional):
        pd.testing.assert_frame_equal(pd.read_parquet(a / f"{name}.parquet"),
                                      pd.read_parquet(b / f"{name}.parquet"), obj=name)


@pytest.mark.parametrize("document, stop_after", [(BASE, 2), (BASE, 4), (ASYNC, 2)],
                         ids=["sync-after-2", "sync-after-4", "async-after-2"])
def test_resumed_run_equals_uninterrupted_run(tmp_path, monkeypatch, document, stop_after):
    scenario = tmp_path / "s.yaml"
    scenario.write_text(yaml.safe_dump(document))
    runner.run(scenario, tmp_path / "full")
    save = runner._save_checkpoint
    clock_at_stop = []

    def save_then_stop(checkpoint, path, sc):
        save(checkpoint, path, sc)
        if checkpoint["round"] == stop_after:
            clock_at_stop.append(checkpoint["wall_time_s"][-1])
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
    _wall_time_counts_every_process(tmp_path / "full", tmp_path / "cut", stop_after,
                                    clock_at_stop[0])


def _wall_time_counts_every_process(full: Path, cut: Path, stop_after: int,
                                    clock_at_stop: float) -> None:
    """The resumed run's wall time holds the first process's time up to its checkpoint
    and all of the second's, so it is never shorter than its own times to target."""
    whole, resumed = (json.loads((d / "manifest.json").read_text()) for d in (full, cut))
    assert whole["summary"]["resumed_after_round"] is None
    summary = resumed["summary"]
    assert summary["resumed_after_round"] == stop_after
    assert summary["wall_time_s"] >= clock_at_stop + summary["prepare_s"] + summary["mission_s"]
    reached = [hit["wall_time_s"] for hit in resumed["time_to_target"].values() if hit]
    assert all(t <= summary["wall_time_s"] for t in reached)


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
    assert "whole run (resumed after round" in result.stdout
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

    from orbitfl.engine.prepare import prepare

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


def test_a_checkpoint_of_other_code_is_one_line_before_simulating(tmp_path, capsys,
                                                                 no_simulation):
    """Rounds computed by other orbitfl code are not continued by this code."""
    from orbitfl.engine.prepare import prepare

    scenario = tmp_path / "s.yaml"
    scenario.write_text(yaml.safe_dump(BASE))
    checkpoint = tmp_path / ".cut.partial" / "checkpoint.pt"
    checkpoint.parent.mkdir(parents=True)
    torch.save({"scenario_sha256": prepare(scenario).scenario.content_hash(),
                "code_sha256": "0" * 64, "round": 1, "strategy": {}, "rounds": [],
                "clients": {}, "received": {}, "undelivered": {}}, checkpoint)
    assert main(["run", str(scenario), "--resume", str(tmp_path / "cut")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert err.startswith(f"error: {checkpoint}: the checkpoint was written by other orbitfl "
                          "code (code 000000000000")


def test_second_process_on_a_live_run_is_refused(tmp_path, capsys, no_simulation):
    from orbitfl.rundir.writer import StagedRunDirectory

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


# Issue 22: checkpoints with this scenario's hash but other contents. Each damage is made
# to a real checkpoint, written after round 2 of BASE (SAFE, top-k: every part is there).
def _nan(c: dict) -> None:
    c["strategy"]["global"]["classifier.weight"][0, 0] = float("nan")


CHECKPOINT_DAMAGE = {
    "wrong-shape": (lambda c: c["strategy"]["global"].update(
        {"classifier.weight": torch.zeros(10, 128)}),
        "key strategy.global.classifier.weight has shape (10, 128), the scenario's model "
        "needs (4, 128)"),
    "wrong-dtype": (lambda c: c["strategy"]["global"].update(
        {"classifier.weight": torch.zeros(4, 128, dtype=torch.float64)}),
        "has dtype torch.float64, the scenario's model needs torch.float32"),
    "missing-key": (lambda c: c["strategy"]["global"].pop("classifier.bias"),
                    "strategy.global lacks ['classifier.bias']"),
    "unknown-key": (lambda c: c["strategy"]["global"].update({"head": torch.zeros(3)}),
                    "strategy.global has unknown ['head']"),
    "nan-weights": (_nan, "strategy.global.classifier.weight holds NaN or infinite values"),
    "inf-personal-model": (
        lambda c: c["clients"][0]["personal"]["classifier.bias"].fill_(float("inf")),
        "clients.0.personal.classifier.bias holds NaN or infinite values"),
    "old-version-wrong-shape": (lambda c: c["strategy"]["versions"][1].update(
        {"classifier.bias": torch.zeros(7)}), "key strategy.versions.1.classifier.bias has "
        "shape (7,)"),
    "version-as-text": (lambda c: c["strategy"].update(version="one"),
                        "strategy.version is 'one', not int"),
    "strategy-part-missing": (lambda c: c["strategy"].pop("safe"), "strategy lacks ['safe']"),
    "round-records-short": (lambda c: c["rounds"].pop(), "round 2 with 2 round records"),
    "round-record-keys": (lambda c: c["rounds"][1].pop("accuracy"),
                          "rounds.1 is not a round record"),
    "client-out-of-range": (lambda c: c["clients"].update({99: {}}),
                            "clients.99 is not the state of one of the 4 clients"),
    "received-garbage": (lambda c: c["received"].update({1: [{"kind": "weights"}]}),
                         "received.1 is not a list of payloads"),
    "undelivered-garbage": (lambda c: c["undelivered"].update({5: {"client_id": 0}}),
                            "undelivered.5 is not a client update"),
}


@pytest.fixture(scope="module")
def real_checkpoint(tmp_path_factory) -> tuple[Path, dict]:
    folder = tmp_path_factory.mktemp("checkpoint")
    scenario = folder / "s.yaml"
    scenario.write_text(yaml.safe_dump(BASE))
    save = runner._save_checkpoint

    def save_then_stop(checkpoint, path, sc):
        save(checkpoint, path, sc)
        if checkpoint["round"] == 2:
            raise KeyboardInterrupt

    with pytest.MonkeyPatch.context() as patch, pytest.raises(KeyboardInterrupt):
        patch.setattr(runner, "_save_checkpoint", save_then_stop)
        runner.run(scenario, folder / "cut")
    return scenario, torch.load(folder / ".cut.partial" / "checkpoint.pt", weights_only=True)


def test_an_intact_checkpoint_passes_the_checks(real_checkpoint):
    from orbitfl.engine.checkpoint_check import check_checkpoint

    _, saved = real_checkpoint
    check_checkpoint(saved, copy.deepcopy(saved["strategy"]), 4, Path("c.pt"))


@pytest.mark.parametrize("case", CHECKPOINT_DAMAGE)
def test_each_damaged_checkpoint_class_is_named_on_one_line(real_checkpoint, case):
    """The reference is the intact checkpoint's own strategy state: the structure a
    freshly built strategy of this scenario has (the CLI cases below use the real one)."""
    from orbitfl.core.errors import InputError
    from orbitfl.engine.checkpoint_check import check_checkpoint

    _, saved = real_checkpoint
    damage, message = CHECKPOINT_DAMAGE[case]
    damaged = copy.deepcopy(saved)
    damage(damaged)
    with pytest.raises(InputError) as err:
        check_checkpoint(damaged, copy.deepcopy(saved["strategy"]), 4, Path("x/c.pt"))
    assert str(err.value).startswith("x/c.pt: damaged checkpoint (") and "\n" not in \
        str(err.value), err.value
    assert message in str(err.value) and "delete x and run the scenario again without " \
        "--resume" in str(err.value)


@pytest.mark.parametrize("case", ["wrong-shape", "nan-weights", "received-unknown-job"])
def test_resume_from_a_damaged_checkpoint_is_one_line_and_exit_2(real_checkpoint, tmp_path,
                                                                 capsys, case):
    scenario, saved = real_checkpoint
    damaged = copy.deepcopy(saved)
    if case == "received-unknown-job":  # only the replay can tell: no such job started
        damaged["received"][999] = damaged["received"][1]
        message = "its saved state does not fit the replayed mission: KeyError 999"
    else:
        damage, message = CHECKPOINT_DAMAGE[case]
        damage(damaged)
    checkpoint = tmp_path / ".cut.partial" / "checkpoint.pt"
    checkpoint.parent.mkdir()
    torch.save(damaged, checkpoint)
    assert main(["run", str(scenario), "--resume", str(tmp_path / "cut"), "-q"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert err.startswith(f"error: {checkpoint}: damaged checkpoint (") and message in err
    assert checkpoint.is_file() and not (tmp_path / "cut").exists()
