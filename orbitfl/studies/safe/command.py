"""The exit status of the study's three commands (driver, export, report): 0 when the work
returns, 2 with one ``error:`` line per problem for bad input (``exit_status``), 1 with
one line for a file system that refuses a write (a folder that cannot be made, a full
disk), as the ``orbitfl`` command does, and 130 with what to do for an interrupt (Ctrl-C,
or the SIGTERM that ends a sitting): never a traceback."""

from __future__ import annotations

import sys
from typing import Callable

from orbitfl.core.errors import exit_status, os_error_line, stop_on_sigterm

INTERRUPTED = ("interrupted: the runs that finished are kept; run the same command again "
               "to resume the rest")


def command_status(work: Callable[[], object]) -> int:
    stop_on_sigterm()
    try:
        return exit_status(work)
    except OSError as err:
        print(f"error: {os_error_line(err)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(INTERRUPTED, file=sys.stderr)
        return 130
