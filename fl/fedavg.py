"""FedAvg (McMahan et al., 2017): broadcast weights, train locally, sample-weighted mean."""

from __future__ import annotations

from typing import Sequence

from .datasets import ImageSet
from .payloads import Payload, weights_payload
from .strategy import ClientUpdate, Strategy, weighted_average
from .training import train_local


class FedAvg(Strategy):
    name = "fedavg"

    def to_client(self, round_index: int, client_id: int) -> list[Payload]:
        return [weights_payload(self.global_model)]

    def fit(self, round_index: int, client_id: int, received: Sequence[Payload],
            data: ImageSet) -> ClientUpdate:
        (weights,) = [p for p in received if p.kind == "weights"]
        self.worker.load_state_dict(weights.tensors)
        loss = train_local(self.worker, data, self.train_config,
                           self.client_generator(round_index, client_id))
        return ClientUpdate(client_id, round_index, len(data),
                            [weights_payload(self.worker)], loss)

    def aggregate(self, round_index: int, updates: Sequence[ClientUpdate]) -> None:
        states = [next(p for p in u.payloads if p.kind == "weights").tensors for u in updates]
        self.global_model.load_state_dict(
            weighted_average(states, [u.num_samples for u in updates]))


STRATEGIES = {FedAvg.name: FedAvg}
