"""Workers live and die with their mission (issue 22): Ctrl-C stops a local pool of 8 or 16
workers within seconds with one line and the full resume command; workers ignore SIGINT,
so none prints a traceback; a mission process killed with SIGKILL takes its workers with it
and leaves no lock behind; a worker killed as the out-of-memory killer would fails the run
with one line naming it, and the checkpoint survives; SIGTERM under Ray is orbitfl's, not
Ray's.

Every run is a real CLI process in a session of its own (a terminal's Ctrl-C goes to its
whole process group, as here), on 4 satellites and 16 px images, stopped right after its
first checkpoint; every process group is killed when its test ends, whatever happened."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from conftest import TLE_DIR

SCENARIO = {
    "name": "workers", "seed": 5, "epoch": "2024-07-16T06:00:00Z", "duration": "2d",
    "constellation": {"tle": str(TLE_DIR / "planet_2024-07-16.tle"),
                      "select": {"name": "FLOCK 4X*", "limit": 16}},
    "ground_stations": {"sites": ["svalsat", "kiruna"]},
    "links": {"downlink": {"rate_mbps": 1}, "uplink": {"rate_mbps": 0.5}},
    "data": {"dataset": "synthetic", "classes": 4, "image_size": 16,
             "samples_per_class_max": 400, "imbalance_ratio": 4, "test_per_class": 30,
             "partition": "dirichlet", "dirichlet_alpha": 1.0, "ses_per_class": 3},
    "fl": {"strategy": "fedavg", "rounds": 40, "local_epochs": 3,  # minutes to finish:
           "schedule": {"deadline": "1h", "min_clients": 2}},      # stopped long before
    "report": {"figures": False},
}
STOP_S = 20.0  # Ctrl-C to exit, at most (today's main hangs for minutes)


class Run:
    """An ``orbitfl run`` in a session of its own, its output in files (no pipe fills)."""

    def __init__(self, folder: Path, *options: str):
        self.folder = folder
        (folder / "s.yaml").write_text(yaml.safe_dump(SCENARIO))
        self.err_file = folder / "stderr.txt"
        with open(self.err_file, "w") as err:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "orbitfl.cli", "run", "s.yaml", "--out", "cut",
                 *options], cwd=folder, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=err, start_new_session=True,
                env={**os.environ, "PYTHONFAULTHANDLER": "1"})  # SIGABRT: every stack
        self.checkpoint = folder / ".cut.partial" / "checkpoint.pt"

    @property
    def err(self) -> str:
        return self.err_file.read_text()

    def wait_for_checkpoint(self, timeout: float = 180.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.checkpoint.exists() and self.process.poll() is None \
                and time.monotonic() < deadline:
            time.sleep(0.05)
        assert self.process.poll() is None and self.checkpoint.exists(), self.err

    def group(self) -> list[int]:
        """Every live process of the run's group (the CLI and its workers), by /proc."""
        return group_members(self.process.pid)

    def wait(self, timeout: float) -> int:
        """The exit status; a run still going after ``timeout`` fails the test with the
        stacks of its threads."""
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.send_signal(signal.SIGABRT)
            self.process.wait(30)
            raise AssertionError(f"still running after {timeout} s:\n{self.err[-8000:]}") \
                from None

    def kill_all(self) -> None:
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(30)


def group_members(pgid: int) -> list[int]:
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:  # state, ppid, pgrp
            members.append(int(entry.name))
    return members


def wait_until(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


@pytest.fixture
def start(tmp_path):
    runs: list[Run] = []

    def started(*options: str) -> Run:
        runs.append(Run(tmp_path, *options))
        return runs[-1]

    yield started
    for run in runs:
        run.kill_all()


def resume_line(folder: Path, options: str) -> str:
    real = folder.resolve()
    return (f"continue with: orbitfl run {shlex.quote(str(real / 's.yaml'))} {options} "
            f"--resume {real / 'cut'}")


@pytest.mark.parametrize("workers", [8, 16])
def test_ctrl_c_stops_a_local_pool_at_once_with_the_resume_command(start, workers):
    run = start("--backend", "local", "--workers", str(workers))
    run.wait_for_checkpoint()
    assert len(run.group()) == workers + 1  # every worker is up
    os.killpg(run.process.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
    started = time.monotonic()
    assert run.wait(STOP_S) == 130, run.err
    assert time.monotonic() - started < STOP_S
    err = run.err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert err.strip().splitlines()[-1] == \
        "interrupted: " + resume_line(run.folder, f"--backend local --workers {workers}")
    assert wait_until(lambda: not run.group(), 10.0), "workers outlived the run"
    assert run.checkpoint.is_file()


def test_sigterm_stops_a_local_pool_and_its_workers(start):
    run = start("--backend", "local", "--workers", "2")
    run.wait_for_checkpoint()
    run.process.send_signal(signal.SIGTERM)  # to the CLI only
    assert run.wait(STOP_S) == 130, run.err
    assert "Traceback" not in run.err, run.err
    assert wait_until(lambda: not run.group(), 10.0), "workers outlived the run"


def test_killed_mission_takes_its_workers_and_its_lock_with_it(start):
    from orbitfl.rundir.writer import _held

    run = start("--backend", "local", "--workers", "2")
    run.wait_for_checkpoint()
    workers = [pid for pid in run.group() if pid != run.process.pid]
    assert len(workers) == 2
    run.process.kill()
    run.process.wait(10)
    assert wait_until(lambda: not run.group(), 10.0), "orphan workers"
    assert not _held(run.checkpoint.parent / ".lock")


def test_a_killed_worker_fails_the_run_with_one_line_and_keeps_the_checkpoint(start):
    run = start("--backend", "local", "--workers", "2")
    run.wait_for_checkpoint()
    victim = next(pid for pid in run.group() if pid != run.process.pid)
    os.kill(victim, signal.SIGKILL)  # as the out-of-memory killer does
    assert run.wait(60) == 1, run.err
    err = run.err
    assert "Traceback" not in err, err
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"error: local pool worker (pid {victim}) was killed by SIGKILL "
                           "(out of memory?); "), last
    assert last.endswith(resume_line(run.folder, "--backend local --workers 2")), last
    assert run.checkpoint.is_file()
    assert wait_until(lambda: not run.group(), 10.0)


def test_sigterm_under_ray_is_orbitfls_own(start):
    pytest.importorskip("ray")
    run = start("--backend", "ray", "--workers", "1")
    run.wait_for_checkpoint()
    run.process.send_signal(signal.SIGTERM)
    assert run.wait(60) == 130, run.err  # Ray's own handler aborts with 134
    err = run.err
    assert "Traceback" not in err, err
    assert err.strip().splitlines()[-1] == \
        "interrupted: " + resume_line(run.folder, "--backend ray --workers 1")


def descendants(pid: int) -> list[int]:
    """Every live process below ``pid`` (Ray's actors are its raylet's children)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def test_a_dead_ray_actor_fails_the_run_with_one_line(start):
    pytest.importorskip("ray")
    run = start("--backend", "ray", "--workers", "1")
    run.wait_for_checkpoint()
    actors = [pid for pid in descendants(run.process.pid)
              if command_line(pid).startswith("ray::_Worker")]
    assert len(actors) == 1, [command_line(p) for p in descendants(run.process.pid)]
    os.kill(actors[0], signal.SIGKILL)
    assert run.wait(60) == 1, run.err
    err = run.err
    assert "Traceback" not in err, err
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"error: Ray actor 0 of 1 (pid {actors[0]}) died: "), last
    assert "(out of memory?); " in last, last
    assert last.endswith(resume_line(run.folder, "--backend ray --workers 1")), last
    assert run.checkpoint.is_file()
