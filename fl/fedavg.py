"""FedAvg (McMahan et al., 2017) and FedProx (Li et al., 2020)."""

from __future__ import annotations

from typing import Any, Sequence

import torch

from .datasets import ImageSet
from .payloads import Payload
from .strategy import ClientState, ClientUpdate, Strategy, TrainMany, weighted_average


class FedAvg(Strategy):
    """Broadcast weights, train locally, sample-weighted mean. Subclasses that change only
    the local loss override ``local_loss`` and keep batched training (``fit_many``)."""

    name = "fedavg"
    prox_mu = 0.0

    def local_loss(self, data: ImageSet) -> dict[str, Any]:
        """Options of ``LocalTrainer.train``'s loss for a client holding ``data``
        (``logit_adjustment``; ``prox_mu`` is read from the strategy)."""
        return {}

    def fit(self, round_index: int, client_id: int, received: Sequence[Payload],
            data: ImageSet, state: ClientState) -> tuple[ClientUpdate, ClientState]:
        start, version = self.received_state(received)
        self.worker.load_state_dict(start)
        loss = self.trainer.train(data, self.client_generator(round_index, client_id),
                                  prox_mu=self.prox_mu, prox_reference=start,
                                  **self.local_loss(data))
        payloads, state = self.upload(self.worker.state_dict(), start, state)
        return ClientUpdate(client_id, round_index, len(data), payloads, loss, version), state

    def fit_many(self, jobs: Sequence[Any], client_data: Sequence[ImageSet],
                 train_many: TrainMany) -> list[tuple[ClientUpdate, ClientState]]:
        """``fit`` for every job at once; a subclass that changes ``fit`` itself (not only
        ``local_loss``) must bring its own."""
        if type(self).fit is not FedAvg.fit:
            return super().fit_many(jobs, client_data, train_many)
        received = [self.received_state(job.received) for job in jobs]
        starts = [start for start, _ in received]
        data = [client_data[job.client_id] for job in jobs]
        generators = [self.client_generator(job.round_index, job.client_id) for job in jobs]
        losses = [self.local_loss(d) for d in data]
        shifts: list[torch.Tensor] | None = [loss["logit_adjustment"] for loss in losses] \
            if any("logit_adjustment" in loss for loss in losses) else None
        mu = self.prox_mu
        trained, train_losses = train_many(starts, data, generators, prox_mu=mu,
                                           prox_references=starts if mu > 0 else None,
                                           logit_adjustment=shifts)
        results = []
        for job, (start, version), state, loss, d in zip(jobs, received, trained, train_losses,
                                                         data):
            payloads, client_state = self.upload(state, start, dict(job.state or {}))
            results.append((ClientUpdate(job.client_id, job.round_index, len(d), payloads,
                                         loss, version), client_state))
        return results

    @classmethod
    def fits_many(cls) -> bool:
        return cls.fit is FedAvg.fit or cls.fit_many is not FedAvg.fit_many

    def aggregate(self, round_index: int, updates: Sequence[ClientUpdate]) -> None:
        states = [self.uploaded_state(u) for u in updates]
        self.commit(weighted_average(states, [u.num_samples for u in updates]))


class FedProx(FedAvg):
    """FedAvg with a proximal term mu/2 ||w - w_global||^2 in every local objective."""

    name = "fedprox"

    @property
    def prox_mu(self) -> float:  # type: ignore[override]
        return self.config.fedprox.mu
