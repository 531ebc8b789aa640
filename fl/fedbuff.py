"""FedBuff (Nguyen et al., AISTATS 2022): asynchronous buffered aggregation.

The server folds every ``K = buffer_size`` arrivals into the model: each client's update
(trained minus the version it started from) is scaled by the polynomial staleness weight
``(1 + tau)^-a`` (tau: global versions published since the client's base) and by its share
of the buffer's samples, then applied with the server learning rate.

A client can report on a model of any age (a satellite may wait hours for its first pass),
so the server keeps exactly the versions some client received and has not yet reported on,
plus the current one: what staleness needs, bounded by what can still arrive (at most one
model per outstanding job), rather than a fixed window of recent versions.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Sequence

import torch

from .fedavg import FedAvg
from .payloads import Payload
from .strategy import ClientUpdate, FLConfig, State, clone_state


def staleness_weight(staleness: int, exponent: float) -> float:
    return (1.0 + staleness) ** (-exponent)


class FedBuff(FedAvg):
    """Local training as in FedAvg; only the server half differs."""

    name = "fedbuff"
    asynchronous = True

    def __init__(self, model: torch.nn.Module, config: FLConfig, options: Any = None):
        super().__init__(model, config, options)
        self.last_staleness: list[int] = []
        self._outstanding: Counter[int] = Counter()  # version -> clients building on it

    def to_client(self, round_index: int, client_id: int) -> list[Payload]:
        self._outstanding[self.version] += 1
        return super().to_client(round_index, client_id)

    def aggregate(self, round_index: int, updates: Sequence[ClientUpdate]) -> None:
        global_state = clone_state(self.global_model.state_dict())
        total = float(sum(u.num_samples for u in updates))
        self.last_staleness = [self.version - u.base_version for u in updates]
        step = {k: torch.zeros_like(v, dtype=torch.float64)
                for k, v in global_state.items() if v.is_floating_point()}
        for update, staleness in zip(updates, self.last_staleness):
            trained = self.uploaded_state(update)
            base = self._versions[update.base_version]
            scale = staleness_weight(staleness, self.config.fedbuff.staleness_exponent) \
                * update.num_samples / total
            for k in step:
                step[k] += scale * (trained[k].to(torch.float64) - base[k].to(torch.float64))
        new_state = dict(global_state)
        for k, delta in step.items():
            new_state[k] = (global_state[k].to(torch.float64)
                            + self.config.fedbuff.server_lr * delta).to(global_state[k].dtype)
        self._outstanding.subtract(u.base_version for u in updates)
        self.commit(new_state)

    def commit(self, state: State) -> None:
        """Install the new model; keep only the versions outstanding clients built on."""
        needed = {v: self._versions[v] for v in self._versions if self._outstanding[v] > 0}
        super().commit(state)
        self._versions = {**needed, self.version: self._versions[self.version]}
        self._outstanding = +self._outstanding  # drop zero and negative counts

    def state_dict(self) -> dict:
        return {**super().state_dict(),
                "outstanding": {int(v): int(n) for v, n in self._outstanding.items()}}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self._outstanding = Counter({int(v): int(n)  # (absent from older checkpoints)
                                     for v, n in state.get("outstanding", {}).items()})
