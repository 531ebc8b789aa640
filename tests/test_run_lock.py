"""The run lock (issue 22): of many attempts on one run directory at the same instant
exactly one gets in and every other is refused with the one-line input error; the lock
belongs to the process that took it, never to the workers it forks; a symbolic link at the
staging path is refused, not followed."""

from __future__ import annotations

import multiprocessing
import os
import threading

import pytest

from orbitfl.core.errors import InputError
from orbitfl.rundir.writer import StagedRunDirectory, _held

ATTEMPTS = 8   # at the same instant
TRIALS = 40


def _attempt(target, start: threading.Barrier, tried: threading.Barrier, outcomes: list):
    """One attempt: all start together; whoever got in holds the lock until every attempt
    was made, then stops as a failed run does (the staging folder goes)."""
    start.wait(10)
    stage = None
    try:
        stage = StagedRunDirectory(target)
        stage.__enter__()
        outcomes.append("in")
    except InputError as err:
        outcomes.append("refused" if "already running" in str(err) else f"other: {err}")
        stage = None
    except Exception as err:  # the race that this test is about
        outcomes.append(f"other: {type(err).__name__}: {err}")
        stage = None
    tried.wait(10)
    if stage is not None:
        stage.__exit__(RuntimeError, RuntimeError("stop"), None)


def test_simultaneous_attempts_let_exactly_one_in(tmp_path):
    for trial in range(TRIALS):
        target = tmp_path / f"run{trial % 2}"  # the folder a stopped trial left is reused
        start, tried = threading.Barrier(ATTEMPTS), threading.Barrier(ATTEMPTS)
        outcomes: list[str] = []
        threads = [threading.Thread(target=_attempt, args=(target, start, tried, outcomes))
                   for _ in range(ATTEMPTS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert sorted(outcomes) == ["in"] + ["refused"] * (ATTEMPTS - 1), (trial, outcomes)
        assert not (tmp_path / f".run{trial % 2}.partial").exists()


def _sleep(started, stop) -> None:
    started.set()  # after the fork's own hooks: what the child would close, it closed
    stop.wait(30)


def test_a_forked_worker_does_not_hold_the_run_lock(tmp_path):
    """A pool worker forked while the run holds its lock: once the run's process lets go
    (it died), nobody holds the lock, though the worker still lives."""
    stage = StagedRunDirectory(tmp_path / "run")
    staging = stage.__enter__()
    context = multiprocessing.get_context("fork")
    started, stop = context.Event(), context.Event()
    worker = context.Process(target=_sleep, args=(started, stop))
    worker.start()
    try:
        assert started.wait(30)
        assert _held(staging / stage.LOCK)
        stage._release()  # what the death of the run's process does
        assert worker.is_alive()
        assert not _held(staging / stage.LOCK)
    finally:
        stop.set()
        worker.join(10)
        if worker.is_alive():
            worker.kill()


@pytest.mark.parametrize("kind", ["folder", "file"])
def test_a_link_at_the_staging_path_is_refused_and_not_followed(tmp_path, kind):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    link = tmp_path / ".run.partial"
    if kind == "folder":
        link.symlink_to(elsewhere, target_is_directory=True)
    else:
        (elsewhere / "f").write_text("x")
        link.symlink_to(elsewhere / "f")
    with pytest.raises(InputError, match="staging folder is a symbolic link"):
        with StagedRunDirectory(tmp_path / "run"):
            pass
    assert os.listdir(elsewhere) == ([] if kind == "folder" else ["f"])
