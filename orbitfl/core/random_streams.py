"""Every seeded random generator of a run, derived from the scenario's one seed and named
by what it draws (one module, so that no two purposes share a stream by accident and a
new one picks a number that is free).

A purpose's generator is ``default_rng(SeedSequence([seed, STREAM]))``: independent of
every other purpose's, and the same for the same seed whatever else the run does.
Learning's per-round, per-client seeds are derived in ``fl/strategy.py`` from the same
seed (``[seed, round, client]``), tiles' in ``fl/federation.py`` from the data streams.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FAULT_STREAM = 2       # fault sampling: reboots, dropped passes, outages
SELECTION_STREAM = 3   # the mission's client selection (random-k)
WEATHER_STREAM = 4     # per-pass weather draws (links.weather.per_pass_draw)
DATA_STREAMS = {"train": 11, "test": 12, "ses": 13, "partition": 14, "clouds": 15,
                "validation": 16}  # the federation's data (fl/federation.py)


def stream(seed: int, number: int) -> np.random.Generator:
    """The generator of stream ``number`` of ``seed``."""
    return np.random.default_rng(np.random.SeedSequence([seed, number]))


@dataclass(frozen=True)
class RandomStreams:
    """The scenario seed's generators, one per purpose; each call starts the stream anew."""

    seed: int

    def faults(self) -> np.random.Generator:
        return stream(self.seed, FAULT_STREAM)

    def selection(self) -> np.random.Generator:
        return stream(self.seed, SELECTION_STREAM)

    def weather(self) -> np.random.SeedSequence:
        """The seed of the per-pass weather draws (constellation/atmosphere.py)."""
        return np.random.SeedSequence([self.seed, WEATHER_STREAM])

    def data(self) -> dict[str, np.random.Generator]:
        return {name: stream(self.seed, number) for name, number in DATA_STREAMS.items()}

    @property
    def model_seed(self) -> int:
        """torch's seed for the initial model (the second word of the seed's state)."""
        return int(np.random.SeedSequence(self.seed).generate_state(2)[1])
