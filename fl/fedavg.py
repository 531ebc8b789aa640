"""FedAvg (McMahan et al., 2017) and FedProx (Li et al., 2020)."""

from __future__ import annotations

from typing import Sequence

from .datasets import ImageSet
from .payloads import Payload
from .strategy import ClientState, ClientUpdate, Strategy, weighted_average


class FedAvg(Strategy):
    """Broadcast weights, train locally, sample-weighted mean."""

    name = "fedavg"
    prox_mu = 0.0

    def fit(self, round_index: int, client_id: int, received: Sequence[Payload],
            data: ImageSet, state: ClientState) -> tuple[ClientUpdate, ClientState]:
        start, version = self.received_state(received)
        self.worker.load_state_dict(start)
        loss = self.trainer.train(data, self.client_generator(round_index, client_id),
                                  prox_mu=self.prox_mu, prox_reference=start)
        payloads, state = self.upload(self.worker.state_dict(), start, state)
        return ClientUpdate(client_id, round_index, len(data), payloads, loss, version), state

    def aggregate(self, round_index: int, updates: Sequence[ClientUpdate]) -> None:
        states = [self.uploaded_state(u) for u in updates]
        self.commit(weighted_average(states, [u.num_samples for u in updates]))


class FedProx(FedAvg):
    """FedAvg with a proximal term mu/2 ||w - w_global||^2 in every local objective."""

    name = "fedprox"

    @property
    def prox_mu(self) -> float:  # type: ignore[override]
        return self.config.fedprox.mu
