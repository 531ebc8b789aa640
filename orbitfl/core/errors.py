"""The one exception type that reaches the user as a single line (and exit code 2)."""

import os
import reprlib
import signal
import sys
import threading
from pathlib import Path
from typing import Callable

from orbitfl.core.limits import ECHO_CHARS, MAX_ELEMENT_FILE_BYTES


class InputError(ValueError):
    """Bad user input: the message names the file, the YAML path or the line, and the problem.

    Every layer raises this for anything a user can fix; the CLI prints ``str(err)`` on one
    line and exits with code 2, never with a traceback.
    """


def _bounded_repr() -> reprlib.Repr:
    shape = reprlib.Repr()
    shape.maxlevel, shape.maxlist, shape.maxtuple, shape.maxdict = 2, 3, 3, 3
    shape.maxstring = shape.maxother = shape.maxlong = ECHO_CHARS
    return shape


_REPR = _bounded_repr()


def short(value: object) -> str:
    """A user's value as an error line may quote it: ``repr`` cut to ``ECHO_CHARS``, and
    built without expanding more than that (a YAML alias bomb or a megabyte string would
    otherwise hang the error message or flood it)."""
    text = _REPR.repr(value).replace("\n", "\\n")
    return text if len(text) <= ECHO_CHARS else text[:ECHO_CHARS - 3] + "..."


def read_user_file(path: Path, what: str, max_bytes: int = MAX_ELEMENT_FILE_BYTES) -> str:
    """A user's text file, or an ``InputError`` naming it (missing, unreadable, not UTF-8,
    or larger than ``max_bytes``: a wrong path must not fill memory). Newlines as in
    ``Path.read_text``."""
    try:
        with Path(path).open("rb") as stream:  # a regular file's size says it unread
            too_big = os.fstat(stream.fileno()).st_size > max_bytes
            data = b"" if too_big else stream.read(max_bytes + 1)
    except FileNotFoundError:
        raise InputError(f"{path}: {what} not found") from None
    except OSError as err:
        raise InputError(f"{path}: cannot read {what} ({err.strerror or type(err).__name__})") \
            from None
    if too_big or len(data) > max_bytes:
        raise InputError(f"{path}: {what} is larger than the {max_bytes / 2**20:g} MiB limit")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise InputError(f"{path}: cannot read {what} (not UTF-8 text: byte {err.start})") \
            from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


class WorkerLost(RuntimeError):
    """A pool worker or Ray actor died under a run (the out-of-memory killer, a signal):
    the message says which and how, on one line; the CLI adds how to resume."""


def exit_status(work: Callable[[], object]) -> int:
    """A module's command-line entry point around ``work``: 0 when it returns, and 2 with
    one ``error:`` line on stderr per problem when it raises ``InputError``."""
    try:
        work()
    except InputError as err:
        for line in str(err).splitlines():
            print(f"error: {line}", file=sys.stderr)
        return 2
    return 0


def os_error_line(err: OSError) -> str:
    """A refused write or read as one line, ``<file>: <why>``, for a command's ``error:``
    (a full disk, a folder that cannot be made): what the user can act on, not a
    traceback."""
    where = f"{err.filename}: " if err.filename else ""
    return where + (err.strerror or (str(err).strip().splitlines() or [type(err).__name__])[0])


def stop_on_sigterm() -> None:
    """Let SIGTERM (a closing terminal, a job scheduler, the end of a session) stop a
    command as cleanly as Ctrl-C: a ``KeyboardInterrupt`` in the main thread, where the
    command writes what finished and says how to resume."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt
