"""What a user sees while long work runs: progress bars with an ETA on a terminal, and the
status lines of stdlib ``logging`` on stderr.

The physics and learning layers know nothing of this module: they accept a plain
``Callable[[int, int], None]`` (``ProgressCallback``: done, total) and log through their own
module loggers (``logging.getLogger(__name__)``, all under ``orbitfl``). The top layer asks
a ``Bars`` for a callback per stage; rich draws the bars only when stderr is a terminal
(or a notebook) and the user did not ask for quiet, so logs, pipes and CI stay plain text.
"""

from __future__ import annotations

import logging
import sys
from contextlib import contextmanager
from typing import Any, Callable, Iterator

ProgressCallback = Callable[[int, int], None]  # (done, total) after each step of a stage

LOGGER = "orbitfl"  # the parent of every module logger of the package
WITHHELD = "score withheld"  # what a blind log prints for a ``Score``


class Score(str):
    """A test score passed as an argument of a status line (``logger.info("... %s", Score(
    "acc 0.812"))``): a blind log (a study's sweep, which reads no test score before its
    runs are complete) prints ``WITHHELD`` in its place and the rest of the line as is."""


def _ignore(done: int, total: int) -> None:
    """The callback of a stage nobody watches."""


class Bars:
    """The progress bars of one piece of long work (a run, a sweep), drawn together while
    the ``with bars:`` block lasts; ``bars.task("contacts")`` gives a stage its callback.
    Disabled (``enabled`` false, or stderr not a terminal), every callback does nothing and
    rich is never imported."""

    def __init__(self, enabled: bool = True):
        self.enabled = enabled and _interactive()
        self._progress: Any = None  # a rich Progress once drawn (rich is imported lazily)
        self._depth = 0  # a run inside a sweep's or the command's block opens no second one

    def __enter__(self) -> "Bars":
        self._depth += 1
        if self.enabled and self._progress is None:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._progress = Progress(
                TextColumn("{task.description:<12}"), BarColumn(), MofNCompleteColumn(),
                TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                console=_console())
            self._progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self._depth -= 1
        if self._depth == 0 and self._progress is not None:
            self._progress.stop()  # on Ctrl-C too: the terminal is left as it was
            self._progress = None

    def task(self, description: str) -> ProgressCallback:
        """A callback that moves the stage's bar to ``done`` of ``total`` (the total may
        change between calls); the bar is added on the first call and stays, complete."""
        if self._progress is None:
            return _ignore
        progress, task = self._progress, None

        def advance(done: int, total: int) -> None:
            nonlocal task
            if task is None:
                task = progress.add_task(description, total=total)
            progress.update(task, completed=done, total=total)

        return advance


NO_BARS = Bars(enabled=False)


def _console():
    from rich.console import Console

    return Console(stderr=True)


def _interactive() -> bool:
    """Whether stderr is a terminal (or a notebook), where a redrawn bar reads well."""
    try:
        console = _console()
    except ImportError:  # rich is a dependency; a broken environment just gets no bars
        return False
    return console.is_terminal or console.is_jupyter


class _Stderr(logging.StreamHandler):
    """A handler on whatever ``sys.stderr`` is when a line is written, so a redirection
    made later (a progress bar's, a test's) still sees the lines."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


class _Plain(logging.Formatter):
    """Status lines as they are (``contacts: 42 windows``); problems prefixed with their
    level (``warning: ...``), as the command's error lines are; debug lines name their
    module. ``withhold_scores``: every ``Score`` argument printed as ``WITHHELD``."""

    def __init__(self, withhold_scores: bool = False):
        super().__init__()
        self.withhold_scores = withhold_scores

    def format(self, record: logging.LogRecord) -> str:
        args = record.args
        if self.withhold_scores and isinstance(args, tuple) and \
                any(isinstance(arg, Score) for arg in args):
            record = logging.makeLogRecord(record.__dict__)  # other handlers keep the score
            record.args = tuple(WITHHELD if isinstance(arg, Score) else arg for arg in args)
        text = super().format(record)
        if record.levelno >= logging.WARNING:
            return f"{record.levelname.lower()}: {text}"
        if record.levelno < logging.INFO:
            return f"debug: {record.name}: {text}"
        return text


def configure_logging(level: int = logging.INFO) -> logging.Handler:
    """The command's logging, set once per invocation: one plain handler on stderr at
    ``level`` (INFO; WARNING with ``--quiet``; DEBUG with ``--verbose``). Calling it again
    replaces the handler it installed, so a process running several commands (the tests)
    does not print each line twice."""
    logger = logging.getLogger(LOGGER)
    for handler in [h for h in logger.handlers if isinstance(h, _Stderr)]:
        logger.removeHandler(handler)
    handler = _Stderr()
    handler.setFormatter(_Plain())
    handler.setLevel(level)  # a sweep point run in this process lowers the logger's level
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False  # the command owns stderr: no second copy through the root
    return handler


def plain_handler(handler: logging.Handler, withhold_scores: bool = False) -> logging.Handler:
    """``handler`` with the command's line format (for a sweep point's log file), its test
    scores withheld when asked (a blind sweep's)."""
    handler.setFormatter(_Plain(withhold_scores))
    return handler


@contextmanager
def status_lines(enabled: bool) -> Iterator[None]:
    """For the Python API: the status lines on stderr during the block when ``enabled``
    and the caller has not configured logging (a configured ``orbitfl`` or root logger is
    the caller's choice and is left alone)."""
    logger = logging.getLogger(LOGGER)
    if not enabled or logger.handlers or logging.getLogger().handlers:
        yield
        return
    handler = _Stderr()
    handler.setFormatter(_Plain())
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
