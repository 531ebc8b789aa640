"""A worker dies with its parent (``fl/lifeline.py``), by the parent-death signal and, where
that is missing, by the watchdog alone; the signal handlers of the process that starts Ray
are its own again afterwards.

Each case is three processes: this test, a parent it kills with SIGKILL, and the parent's
child, which must be gone within seconds; every process is killed when the test ends."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from orbitfl.fl import lifeline

CHILD = textwrap.dedent("""
    import os, sys, time
    from orbitfl.fl import lifeline
    if sys.argv[1] == "watchdog-only":
        lifeline._parent_death_signal = lambda signum: False
    lifeline.die_with_parent(int(sys.argv[2]))
    print("ready", flush=True)
    time.sleep(60)
""")
PARENT = textwrap.dedent("""
    import os, subprocess, sys
    child = subprocess.Popen([sys.executable, "-c", sys.argv[1], sys.argv[2], str(os.getpid())],
                             stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "ready"
    print(child.pid, flush=True)
    child.wait()
""")


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("guard", ["both", "watchdog-only"])
def test_a_child_dies_with_its_killed_parent(guard):
    parent = subprocess.Popen([sys.executable, "-c", PARENT, CHILD, guard],
                              stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        child = int(parent.stdout.readline())
        assert _alive(child)
        parent.kill()
        parent.wait(10)
        deadline = time.monotonic() + 10 * lifeline.POLL_S + 5
        while _alive(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(child), "the child outlived its parent"
    finally:
        try:
            os.killpg(parent.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_signal_handlers_survive_what_replaces_them():
    def mine(signum, frame):
        raise KeyboardInterrupt

    before = signal.signal(signal.SIGTERM, mine)
    # Python's default_int_handler, or SIG_IGN where a shell started the tests in the
    # background ('make test &' ignores SIGINT): whatever it was, it must come back.
    interrupt = signal.getsignal(signal.SIGINT)
    changed = signal.SIG_DFL if interrupt is signal.SIG_IGN else signal.SIG_IGN
    try:
        with lifeline.kept_signal_handlers():
            signal.signal(signal.SIGTERM, signal.SIG_DFL)  # what ray.init does
            signal.signal(signal.SIGINT, changed)
        assert signal.getsignal(signal.SIGTERM) is mine
        assert signal.getsignal(signal.SIGINT) is interrupt
    finally:
        signal.signal(signal.SIGTERM, before)


def _sleeper(on_sigterm) -> None:
    signal.signal(signal.SIGTERM, on_sigterm)  # not whatever handler the tests left
    time.sleep(30)


def test_stop_processes_kills_what_ignores_sigterm_and_says_how_it_ended():
    import multiprocessing

    context = multiprocessing.get_context("fork")
    stubborn = context.Process(target=_sleeper, args=(signal.SIG_IGN,))
    plain = context.Process(target=_sleeper, args=(signal.SIG_DFL,))
    stubborn.start()
    plain.start()
    try:
        time.sleep(0.3)  # the handler is in place
        lifeline.stop_processes([stubborn, plain], grace_s=0.5)
        assert (stubborn.exitcode, plain.exitcode) == (-signal.SIGKILL, -signal.SIGTERM)
    finally:
        for process in (stubborn, plain):
            if process.is_alive():
                process.kill()
    assert lifeline.exit_status(-9) == "was killed by SIGKILL (out of memory?)"
    assert lifeline.exit_status(-15) == "was killed by SIGTERM"
    assert lifeline.exit_status(3) == "exited with status 3"
