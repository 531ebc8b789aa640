"""The exit status of the study's three commands (driver, export, report): 0 when the work
returns, 2 with one ``error:`` line per problem for bad input (``exit_status``), and 1 with
one line for a file system that refuses a write (a folder that cannot be made, a full
disk), as the ``orbitfl`` command does: never a traceback."""

from __future__ import annotations

import sys
from typing import Callable

from orbitfl.core.errors import exit_status, os_error_line


def command_status(work: Callable[[], object]) -> int:
    try:
        return exit_status(work)
    except OSError as err:
        print(f"error: {os_error_line(err)}", file=sys.stderr)
        return 1
