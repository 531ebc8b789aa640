"""Resuming a run: the past replayed by a stand-in for the learning side.

The simulated timeline depends on payload kinds and sizes, never on tensor values (sizes
are fixed by the model and the codec: ``Strategy.upload_sizes``), so the past is
re-simulated quickly by ``Replay``, which answers the mission as ``Learning`` does but
trains nothing: a fresh strategy sends the same kinds and sizes (and keeps the server's
bookkeeping of one-time payloads), aggregation only counts versions, and each round's
record is the saved one. At the checkpointed round it hands over to the live learning,
restored from the checkpoint; the mission's loop never asks which of the two it talks to.
"""

from __future__ import annotations

from typing import Sequence

from orbitfl.engine.learning import Learning, LearningSide
from orbitfl.fl.payloads import Payload
from orbitfl.fl.strategy import ClientUpdate, PayloadSize, Strategy


class CheckpointMismatch(Exception):
    """A checkpoint that passed the checks on loading but cannot be restored where the
    replay reaches its round (e.g. a saved job the replayed timeline never started)."""


class Replay:
    def __init__(self, fresh: Strategy, live: Learning, checkpoint: dict):
        self.fresh, self.live, self.checkpoint = fresh, live, checkpoint
        self._clients: dict[int, int] = {}   # job -> client

    @property
    def version(self) -> int:
        return self.fresh.version

    @property
    def global_model(self):
        return self.fresh.global_model

    def job_flops(self, client: int) -> float:
        return self.live.job_flops(client)

    def broadcast(self, job: int, round_index: int, client: int) -> list[Payload]:
        self._clients[job] = client
        return self.fresh.to_client(round_index, client)  # also tracks one-time payloads

    def trained(self, job: int) -> list[PayloadSize]:
        return self.fresh.upload_sizes(self._clients[job])

    def dropped(self, job: int) -> None:
        pass

    def aggregate(self, round_index: int, jobs: Sequence[int]) -> list[ClientUpdate]:
        if jobs:
            self.fresh.version += 1
        return []

    def saved_record(self, index: int) -> dict | None:
        return self.checkpoint["rounds"][index]

    def personal_models(self) -> dict[int, dict]:
        return {}

    def round_done(self, round_index: int, rounds: list[dict],
                   jobs: dict[int, tuple[int, int]]) -> LearningSide:
        """At the saved round: the live learning, restored; before it: still replaying."""
        if round_index != self.checkpoint["round"]:
            return self
        try:
            self.live.restore(self.checkpoint, jobs)
        except (KeyError, IndexError, TypeError, ValueError, RuntimeError) as err:
            raise CheckpointMismatch(f"its saved state does not fit the replayed mission: "
                                     f"{type(err).__name__} {str(err)[:80]}") from err
        return self.live

    def close(self) -> None:
        self.live.close()
