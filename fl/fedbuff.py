"""FedBuff (Nguyen et al., AISTATS 2022): asynchronous buffered aggregation.

The server folds every ``K = buffer_size`` arrivals into the model: each client's update
(trained minus the version it started from) is scaled by the polynomial staleness weight
``(1 + tau)^-a`` (tau: global versions published since the client's base) and by its share
of the buffer's samples, then applied with the server learning rate.
"""

from __future__ import annotations

from typing import Sequence

import torch

from .fedavg import FedAvg
from .strategy import ClientUpdate, FLConfig, clone_state


def staleness_weight(staleness: int, exponent: float) -> float:
    return (1.0 + staleness) ** (-exponent)


class FedBuff(FedAvg):
    """Local training as in FedAvg; only the server half differs."""

    name = "fedbuff"

    def __init__(self, model: torch.nn.Module, config: FLConfig):
        super().__init__(model, config)
        self.last_staleness: list[int] = []

    def aggregate(self, round_index: int, updates: Sequence[ClientUpdate]) -> None:
        global_state = clone_state(self.global_model.state_dict())
        total = float(sum(u.num_samples for u in updates))
        self.last_staleness = [self.version - u.base_version for u in updates]
        step = {k: torch.zeros_like(v, dtype=torch.float64)
                for k, v in global_state.items() if v.is_floating_point()}
        for update, staleness in zip(updates, self.last_staleness):
            trained = self.uploaded_state(update)
            base = self._versions[update.base_version]
            scale = staleness_weight(staleness, self.config.staleness_exponent) \
                * update.num_samples / total
            for k in step:
                step[k] += scale * (trained[k].to(torch.float64) - base[k].to(torch.float64))
        new_state = dict(global_state)
        for k, delta in step.items():
            new_state[k] = (global_state[k].to(torch.float64)
                            + self.config.server_lr * delta).to(global_state[k].dtype)
        self.commit(new_state)
