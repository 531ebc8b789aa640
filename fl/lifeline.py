"""A worker process lives and dies with the process that started it.

A pool worker or sweep point left running after its parent was killed (``kill -9``, the
out-of-memory killer) holds hundreds of megabytes and, through inherited descriptors,
files the next run needs. Two guards, so that one failing is not enough to leave an
orphan: Linux's parent-death signal (``prctl(PR_SET_PDEATHSIG)``, immediate; it fires when
the parent *thread* that started the worker ends, which for orbitfl is the main thread),
and a watchdog thread that compares ``os.getppid()`` with the parent's pid (any POSIX
system; notices within ``POLL_S``). And the process that starts Ray keeps its own signal
handlers (``kept_signal_handlers``), so that Ctrl-C and SIGTERM still stop it cleanly;
workers are stopped in bounded time (``stop_processes``) and their end said in words
(``exit_status``).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import signal
import sys
import threading
import time
from typing import Any, Iterator, Sequence

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
POLL_S = 0.5
STOP_GRACE_S = 5.0  # how long a stopped worker gets before SIGKILL


def die_with_parent(parent: int, signum: int = signal.SIGKILL) -> None:
    """From now on, ``signum`` reaches this process when ``parent`` (its parent's pid, as
    the parent saw itself) is gone. Call it first thing in the worker."""
    _parent_death_signal(signum)
    threading.Thread(target=_watch, args=(parent, signum), name="orbitfl-lifeline",
                     daemon=True).start()
    if os.getppid() != parent:  # died before the guards were set
        os.kill(os.getpid(), signum)


def _parent_death_signal(signum: int) -> bool:
    """``prctl(PR_SET_PDEATHSIG, signum)`` where the platform has it."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, int(signum), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _watch(parent: int, signum: int) -> None:
    while os.getppid() == parent:
        time.sleep(POLL_S)
    os.kill(os.getpid(), signum)


@contextlib.contextmanager
def kept_signal_handlers() -> Iterator[None]:
    """This process's SIGINT and SIGTERM handlers as they were before the block: Ray's
    start installs its own (SIGTERM then aborts with a C++ dump instead of stopping the run
    cleanly). Only the main thread can set handlers; elsewhere nothing is done."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, handler in saved.items():
            if handler is not None:
                signal.signal(signum, handler)


def exit_status(code: int) -> str:
    """A process's end in words: ``-9`` is killed by SIGKILL, as the out-of-memory killer
    leaves it."""
    if code < 0:
        name = signal.Signals(-code).name
        why = " (out of memory?)" if -code == signal.SIGKILL else ""
        return f"was killed by {name}{why}"
    return f"exited with status {code}"


def stop_processes(processes: Sequence[Any], grace_s: float = STOP_GRACE_S) -> None:
    """SIGTERM to every ``multiprocessing.Process`` still alive, SIGKILL to any that has
    not ended ``grace_s`` later; bounded, whatever the processes do."""
    alive = [p for p in processes if p.exitcode is None]
    for process in alive:
        with contextlib.suppress(OSError, ValueError, AttributeError):
            process.terminate()
    deadline = time.monotonic() + grace_s
    for process in alive:
        with contextlib.suppress(ValueError, AttributeError, AssertionError):
            process.join(max(0.0, deadline - time.monotonic()))
        with contextlib.suppress(OSError, ValueError, AttributeError, AssertionError):
            if process.exitcode is None:
                process.kill()
                process.join(grace_s)
