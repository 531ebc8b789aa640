"""A run as the figures draw it: the run's data (``run_model.Run``) beside its look, which
is the report's, not the run's: its label (the run's name, with its folder's where two runs
of a report share a name, so that their traces stay apart) and its cue (colour and a second
cue that does not need colour, ``style.cue``), the same in every figure of a report."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from .run_model import Run
from .style import Cue, cue


@dataclass(frozen=True)
class StyledRun:
    data: Run
    name: str  # the label the figures and the dashboard show
    cue: Cue

    @property
    def colour(self) -> str:
        return self.cue.colour


def styled(runs: list[Run]) -> list[StyledRun]:
    """Each run with its label and look, in order (the ``i``-th run: ``cue(i)``)."""
    counts = Counter(run.name for run in runs)
    return [StyledRun(run, f"{run.name} ({run.path.name})" if counts[run.name] > 1
                      else run.name, cue(i)) for i, run in enumerate(runs)]
