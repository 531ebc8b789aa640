"""The stand-in strategy that replays a resumed run's past.

The simulated timeline depends on payload kinds and sizes, never on tensor values (sizes
are fixed by the model and the codec), so the past can be re-simulated quickly with a
fresh strategy that sends and uploads the same kinds and sizes without training. At the
checkpointed round the mission swaps in the saved state.
"""

from __future__ import annotations

from typing import Sequence

from orbitfl.fl.datasets import ImageSet
from orbitfl.fl.payloads import Payload
from orbitfl.fl.strategy import ClientUpdate, Strategy, clone_state


class SizeOnlyStrategy:
    def __init__(self, fresh: Strategy):
        self.fresh = fresh

    @property
    def version(self) -> int:
        return self.fresh.version

    def to_client(self, round_index: int, client_id: int) -> list[Payload]:
        return self.fresh.to_client(round_index, client_id)  # also tracks one-time payloads

    def run_fit(self, round_index: int, client_id: int, received: Sequence[Payload],
                data: ImageSet) -> ClientUpdate:
        _, version = self.fresh.received_state(received)
        state = clone_state(self.fresh.global_model.state_dict())
        return ClientUpdate(client_id, round_index, len(data),
                            self.fresh.upload(client_id, state, state), 0.0, version)

    def aggregate(self, round_index: int, updates: Sequence[ClientUpdate]) -> None:
        self.fresh.version += 1
